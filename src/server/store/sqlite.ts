// SQLite-backed store (better-sqlite3). The schema is versioned with PRAGMA user_version.
import Database from "better-sqlite3";
import { chmodSync, existsSync } from "node:fs";
import type { AuditEvent, IssuedCertRecord, JoinCommit, NodeRecord, RenewalCommit, Store } from "./store.js";
import type { TokenRecord } from "../tokens.js";

/** Each entry upgrades the schema by one version; never edit a released entry, append. */
export const MIGRATIONS: string[] = [
  `CREATE TABLE nodes (
     name TEXT PRIMARY KEY,
     facts TEXT NOT NULL,
     first_seen INTEGER NOT NULL,
     last_seen INTEGER NOT NULL
   );
   CREATE TABLE tokens (
     id TEXT PRIMARY KEY,
     secret_hash TEXT NOT NULL,
     node TEXT,
     uses_left INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     description TEXT
   );
   CREATE TABLE certificates (
     serial TEXT PRIMARY KEY,
     node TEXT NOT NULL,
     kind TEXT NOT NULL,
     not_before INTEGER NOT NULL,
     not_after INTEGER NOT NULL,
     fingerprint TEXT NOT NULL,
     issued_at INTEGER NOT NULL
   );
   CREATE INDEX certificates_node ON certificates(node, kind, issued_at);
   CREATE TABLE audit (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     time INTEGER NOT NULL,
     type TEXT NOT NULL,
     node TEXT,
     source TEXT,
     rule TEXT,
     reason TEXT,
     detail TEXT
   );`,
  // v2: renewal lineage and eviction.
  `ALTER TABLE nodes ADD COLUMN confirmed_serial TEXT;
   ALTER TABLE nodes ADD COLUMN evicted_at INTEGER;`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export function migrate(db: Database.Database, migrations: string[] = MIGRATIONS): number {
  const current = db.pragma("user_version", { simple: true }) as number;
  if (current > migrations.length) {
    throw new Error(
      `the server database has schema version ${current}, newer than this nodecert understands (${migrations.length}): ` +
        `it was written by a newer release; run that release or restore a backup instead of downgrading`,
    );
  }
  for (let v = current; v < migrations.length; v++) {
    db.transaction(() => {
      db.exec(migrations[v]);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
  return migrations.length;
}

interface NodeRow {
  name: string;
  facts: string;
  first_seen: number;
  last_seen: number;
  confirmed_serial: string | null;
  evicted_at: number | null;
}

const nodeFromRow = (r: NodeRow): NodeRecord => ({
  name: r.name,
  facts: JSON.parse(r.facts),
  firstSeen: new Date(r.first_seen),
  lastSeen: new Date(r.last_seen),
  confirmedSerial: r.confirmed_serial ?? undefined,
  evictedAt: r.evicted_at === null ? undefined : new Date(r.evicted_at),
});

interface CertRow {
  serial: string;
  node: string;
  kind: string;
  not_before: number;
  not_after: number;
  fingerprint: string;
  issued_at: number;
}

const certFromRow = (r: CertRow): IssuedCertRecord => ({
  serial: r.serial,
  node: r.node,
  kind: r.kind as IssuedCertRecord["kind"],
  notBefore: new Date(r.not_before),
  notAfter: new Date(r.not_after),
  fingerprint256: r.fingerprint,
  issuedAt: new Date(r.issued_at),
});

export class SqliteStore implements Store {
  readonly db: Database.Database;

  constructor(file: string) {
    const fresh = !existsSync(file);
    this.db = new Database(file);
    if (fresh) chmodSync(file, 0o600);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = FULL");
    this.db.pragma("busy_timeout = 5000");
    migrate(this.db);
  }

  async insertToken(t: TokenRecord): Promise<void> {
    this.db
      .prepare(`INSERT INTO tokens (id, secret_hash, node, uses_left, expires_at, created_at, description) VALUES (?,?,?,?,?,?,?)`)
      .run(t.id, t.secretHash, t.node ?? null, t.usesLeft, t.expiresAt.getTime(), t.createdAt.getTime(), t.description ?? null);
  }

  async getToken(id: string): Promise<TokenRecord | undefined> {
    const r = this.db.prepare(`SELECT * FROM tokens WHERE id = ?`).get(id) as
      | { id: string; secret_hash: string; node: string | null; uses_left: number; expires_at: number; created_at: number; description: string | null }
      | undefined;
    if (!r) return undefined;
    return {
      id: r.id,
      secretHash: r.secret_hash,
      node: r.node ?? undefined,
      usesLeft: r.uses_left,
      expiresAt: new Date(r.expires_at),
      createdAt: new Date(r.created_at),
      description: r.description ?? undefined,
    };
  }

  async commitJoin(c: JoinCommit): Promise<boolean> {
    return this.db.transaction(() => {
      const spent = this.db
        .prepare(`UPDATE tokens SET uses_left = uses_left - 1 WHERE id = ? AND uses_left > 0 AND expires_at > ?`)
        .run(c.tokenId, c.now.getTime());
      if (spent.changes !== 1) return false;
      this.upsertNode(c.node, c.facts, c.now);
      for (const cert of c.certificates) this.insertCert(cert);
      this.insertAudit(c.audit);
      return true;
    })();
  }

  /** A (re-)join starts a new lineage: certificates from before it can no longer renew. */
  private upsertNode(name: string, facts: unknown, now: Date): void {
    this.db
      .prepare(
        `INSERT INTO nodes (name, facts, first_seen, last_seen) VALUES (?,?,?,?)
         ON CONFLICT(name) DO UPDATE SET facts = excluded.facts, last_seen = excluded.last_seen, confirmed_serial = NULL`,
      )
      .run(name, JSON.stringify(facts), now.getTime(), now.getTime());
  }

  private insertCert(c: IssuedCertRecord): void {
    this.db
      .prepare(`INSERT INTO certificates (serial, node, kind, not_before, not_after, fingerprint, issued_at) VALUES (?,?,?,?,?,?,?)`)
      .run(c.serial, c.node, c.kind, c.notBefore.getTime(), c.notAfter.getTime(), c.fingerprint256, c.issuedAt.getTime());
  }

  private insertAudit(e: AuditEvent): void {
    this.db
      .prepare(`INSERT INTO audit (time, type, node, source, rule, reason, detail) VALUES (?,?,?,?,?,?,?)`)
      .run(e.time.getTime(), e.type, e.node ?? null, e.source ?? null, e.rule ?? null, e.reason ?? null, e.detail ? JSON.stringify(e.detail) : null);
  }

  async recordCertificate(c: IssuedCertRecord): Promise<void> {
    this.insertCert(c);
  }

  async getCertificate(serial: string): Promise<IssuedCertRecord | undefined> {
    const r = this.db.prepare(`SELECT * FROM certificates WHERE serial = ?`).get(serial) as CertRow | undefined;
    return r ? certFromRow(r) : undefined;
  }

  async listCertificates(node?: string): Promise<IssuedCertRecord[]> {
    const rows = (
      node
        ? this.db.prepare(`SELECT * FROM certificates WHERE node = ? ORDER BY issued_at`).all(node)
        : this.db.prepare(`SELECT * FROM certificates ORDER BY issued_at`).all()
    ) as CertRow[];
    return rows.map(certFromRow);
  }

  async getNode(name: string): Promise<NodeRecord | undefined> {
    const r = this.db.prepare(`SELECT * FROM nodes WHERE name = ?`).get(name) as NodeRow | undefined;
    return r ? nodeFromRow(r) : undefined;
  }

  async listNodes(): Promise<NodeRecord[]> {
    return (this.db.prepare(`SELECT * FROM nodes ORDER BY name`).all() as NodeRow[]).map(nodeFromRow);
  }

  async latestCertificates(node: string, kind: IssuedCertRecord["kind"], limit: number): Promise<IssuedCertRecord[]> {
    const rows = this.db.prepare(`SELECT * FROM certificates WHERE node = ? AND kind = ? ORDER BY issued_at DESC, rowid DESC LIMIT ?`).all(node, kind, limit) as CertRow[];
    return rows.map(certFromRow);
  }

  async commitRenewal(c: RenewalCommit): Promise<void> {
    this.db.transaction(() => {
      this.db.prepare(`UPDATE nodes SET facts = ?, last_seen = ?, confirmed_serial = ? WHERE name = ?`).run(JSON.stringify(c.facts), c.now.getTime(), c.confirmedSerial, c.node);
      for (const cert of c.certificates) this.insertCert(cert);
      this.insertAudit(c.audit);
    })();
  }

  async setEvicted(name: string, at: Date | undefined): Promise<void> {
    this.db.prepare(`UPDATE nodes SET evicted_at = ? WHERE name = ?`).run(at ? at.getTime() : null, name);
  }

  async audit(e: AuditEvent): Promise<void> {
    this.insertAudit(e);
  }

  async listAudit(limit = 1000): Promise<AuditEvent[]> {
    const rows = this.db.prepare(`SELECT * FROM audit ORDER BY id DESC LIMIT ?`).all(limit) as {
      time: number;
      type: string;
      node: string | null;
      source: string | null;
      rule: string | null;
      reason: string | null;
      detail: string | null;
    }[];
    return rows.map((r) => ({
      time: new Date(r.time),
      type: r.type,
      node: r.node ?? undefined,
      source: r.source ?? undefined,
      rule: r.rule ?? undefined,
      reason: r.reason ?? undefined,
      detail: r.detail ? JSON.parse(r.detail) : undefined,
    }));
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
