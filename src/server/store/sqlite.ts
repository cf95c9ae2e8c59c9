// SQLite-backed store (better-sqlite3). The schema is versioned with PRAGMA user_version.
import Database from "better-sqlite3";
import { chmodSync, existsSync } from "node:fs";
import type { AuditEvent, CampaignNodeQuery, CampaignNodeRecord, CampaignNodeState, CampaignRecord, IssuedCertRecord, JoinCommit, JoinOutcome, NodeRecord, NodeReport, RenewalCommit, RenewalOutcome, SanGrant, SanHolding, Store } from "./store.js";
import { tokenGrants, type TokenRecord } from "../tokens.js";
import { normalizeIp, type SanSet } from "../../pki/names.js";

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
  // v3: fleet reports, issuers, rotation campaigns, CA rotation state.
  `ALTER TABLE nodes ADD COLUMN reported TEXT;
   ALTER TABLE nodes ADD COLUMN last_hello INTEGER;
   ALTER TABLE certificates ADD COLUMN issuer_fp TEXT;
   CREATE TABLE campaigns (
     id TEXT PRIMARY KEY,
     created_at INTEGER NOT NULL,
     state TEXT NOT NULL,
     max_in_flight INTEGER NOT NULL,
     reason TEXT NOT NULL,
     which TEXT NOT NULL,
     key_algorithm TEXT,
     finished_at INTEGER
   );
   CREATE TABLE campaign_nodes (
     campaign_id TEXT NOT NULL REFERENCES campaigns(id),
     node TEXT NOT NULL,
     state TEXT NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     last_error TEXT,
     started_at INTEGER,
     finished_at INTEGER,
     command_id TEXT,
     next_attempt_at INTEGER,
     serials TEXT,
     PRIMARY KEY (campaign_id, node)
   );
   CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);`,
  // v4: serving SANs from sources the node does not control. The join address of nodes that
  // joined before is taken from their last join's audit event.
  `ALTER TABLE nodes ADD COLUMN join_address TEXT;
   UPDATE nodes SET join_address = (
     SELECT source FROM audit WHERE audit.node = nodes.name AND audit.type IN ('join.issued', 'join.rejoined') ORDER BY audit.id DESC LIMIT 1);
   ALTER TABLE tokens ADD COLUMN sans TEXT;
   CREATE TABLE certificate_sans (
     serial TEXT NOT NULL REFERENCES certificates(serial),
     kind TEXT NOT NULL,
     value TEXT NOT NULL,
     PRIMARY KEY (serial, kind, value)
   );
   CREATE INDEX certificate_sans_value ON certificate_sans(kind, value);
   CREATE TABLE san_grants (
     node TEXT NOT NULL,
     kind TEXT NOT NULL,
     value TEXT NOT NULL,
     source TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     PRIMARY KEY (node, kind, value)
   );
   CREATE INDEX san_grants_value ON san_grants(kind, value);`,
  // v5: a node's newest certificate of a kind (every renewal asks) is read in insertion order; an
  // index on (node, kind) holds its entries in rowid order, so that read no longer sorts the node's
  // whole history (certificates_node orders by issued_at and cannot serve ORDER BY rowid).
  `CREATE INDEX certificates_node_kind ON certificates(node, kind);`,
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
  reported: string | null;
  last_hello: number | null;
  join_address: string | null;
}

const nodeFromRow = (r: NodeRow): NodeRecord => ({
  name: r.name,
  facts: JSON.parse(r.facts),
  firstSeen: new Date(r.first_seen),
  lastSeen: new Date(r.last_seen),
  confirmedSerial: r.confirmed_serial ?? undefined,
  evictedAt: r.evicted_at === null ? undefined : new Date(r.evicted_at),
  reported: r.reported ? JSON.parse(r.reported) : undefined,
  lastHello: r.last_hello === null ? undefined : new Date(r.last_hello),
  joinAddress: r.join_address ? normalizeIp(r.join_address) : undefined,
});

interface CampaignRow {
  id: string;
  created_at: number;
  state: string;
  max_in_flight: number;
  reason: string;
  which: string;
  key_algorithm: string | null;
  finished_at: number | null;
}

const campaignFromRow = (r: CampaignRow): CampaignRecord => ({
  id: r.id,
  createdAt: new Date(r.created_at),
  state: r.state as CampaignRecord["state"],
  maxInFlight: r.max_in_flight,
  reason: r.reason,
  which: JSON.parse(r.which),
  keyAlgorithm: r.key_algorithm ?? undefined,
  finishedAt: r.finished_at === null ? undefined : new Date(r.finished_at),
});

interface CampaignNodeRow {
  campaign_id: string;
  node: string;
  state: string;
  attempts: number;
  last_error: string | null;
  started_at: number | null;
  finished_at: number | null;
  command_id: string | null;
  next_attempt_at: number | null;
  serials: string | null;
}

const campaignNodeFromRow = (r: CampaignNodeRow): CampaignNodeRecord => ({
  campaignId: r.campaign_id,
  node: r.node,
  state: r.state as CampaignNodeRecord["state"],
  attempts: r.attempts,
  lastError: r.last_error ?? undefined,
  startedAt: r.started_at === null ? undefined : new Date(r.started_at),
  finishedAt: r.finished_at === null ? undefined : new Date(r.finished_at),
  commandId: r.command_id ?? undefined,
  nextAttemptAt: r.next_attempt_at === null ? undefined : new Date(r.next_attempt_at),
  serials: r.serials ? JSON.parse(r.serials) : undefined,
});

interface CertRow {
  serial: string;
  node: string;
  kind: string;
  not_before: number;
  not_after: number;
  fingerprint: string;
  issued_at: number;
  issuer_fp: string | null;
}

const certFromRow = (r: CertRow): IssuedCertRecord => ({
  serial: r.serial,
  node: r.node,
  kind: r.kind as IssuedCertRecord["kind"],
  notBefore: new Date(r.not_before),
  notAfter: new Date(r.not_after),
  fingerprint256: r.fingerprint,
  issuedAt: new Date(r.issued_at),
  issuerFingerprint: r.issuer_fp ?? undefined,
});

interface Pending {
  run: () => unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** How many group commits ran and how many writes they carried (tests, benchmarks). */
export interface GroupCommitStats {
  batches: number;
  writes: number;
  largest: number;
}

export class SqliteStore implements Store {
  readonly db: Database.Database;
  /**
   * Group commit: issuance commits and audit events queued in one turn of the event loop are
   * written in one IMMEDIATE transaction (each in its own savepoint, so one that fails is rolled
   * back alone) and fsynced once (synchronous = FULL); each caller's promise settles only after
   * that commit returned, so nothing is answered before its record is durable.
   */
  private pending: Pending[] = [];
  private flushScheduled = false;
  readonly groupCommit: GroupCommitStats = { batches: 0, writes: 0, largest: 0 };

  constructor(file: string) {
    const fresh = !existsSync(file);
    this.db = new Database(file);
    if (fresh) chmodSync(file, 0o600);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = FULL");
    this.db.pragma("busy_timeout = 5000");
    migrate(this.db);
    // Prepared once per SQL text: compiling a statement per call cost more than running it.
    const prepare = this.db.prepare.bind(this.db);
    const statements = new Map<string, Database.Statement>();
    this.db.prepare = ((sql: string) => {
      let st = statements.get(sql);
      if (!st) {
        st = prepare(sql);
        statements.set(sql, st);
      }
      return st;
    }) as typeof this.db.prepare;
  }

  /** Queues a write for the next group commit; resolves with its result once it is durable. */
  private grouped<T>(run: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ run, resolve: resolve as (v: unknown) => void, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    const batch = this.pending;
    this.pending = [];
    if (!batch.length) return;
    const results: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
    try {
      this.db.transaction(() => {
        for (const p of batch) {
          try {
            // A nested transaction is a savepoint: a write that throws is undone alone.
            results.push({ ok: true, value: this.db.transaction(p.run)() });
          } catch (error) {
            results.push({ ok: false, error });
          }
        }
      }).immediate();
    } catch (e) {
      // The commit itself failed (disk full, I/O error): nothing of the batch is durable.
      for (const p of batch) p.reject(e);
      return;
    }
    this.groupCommit.batches++;
    this.groupCommit.writes += batch.length;
    this.groupCommit.largest = Math.max(this.groupCommit.largest, batch.length);
    batch.forEach((p, i) => {
      const r = results[i];
      if (r.ok) p.resolve(r.value);
      else p.reject(r.error);
    });
  }

  async insertToken(t: TokenRecord): Promise<void> {
    this.db
      .prepare(`INSERT INTO tokens (id, secret_hash, node, uses_left, expires_at, created_at, description, sans) VALUES (?,?,?,?,?,?,?,?)`)
      .run(t.id, t.secretHash, t.node ?? null, t.usesLeft, t.expiresAt.getTime(), t.createdAt.getTime(), t.description ?? null, t.sans ? JSON.stringify(t.sans) : null);
  }

  async getToken(id: string): Promise<TokenRecord | undefined> {
    const r = this.db.prepare(`SELECT * FROM tokens WHERE id = ?`).get(id) as
      | { id: string; secret_hash: string; node: string | null; uses_left: number; expires_at: number; created_at: number; description: string | null; sans: string | null }
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
      sans: r.sans ? JSON.parse(r.sans) : undefined,
    };
  }

  async commitJoin(c: JoinCommit): Promise<JoinOutcome> {
    // In the group commit's IMMEDIATE transaction: the write lock is taken before the read, so
    // another process's join for the same name cannot slip in between the existence check and the insert.
    return this.grouped((): JoinOutcome => {
      const row = this.db.prepare(`SELECT * FROM nodes WHERE name = ?`).get(c.node) as NodeRow | undefined;
      const existing = row ? nodeFromRow(row) : undefined;
      if (existing && !c.mayReplace) return { code: "existing-node", node: existing };
      const spent = this.db
        .prepare(`UPDATE tokens SET uses_left = uses_left - 1 WHERE id = ? AND uses_left > 0 AND expires_at > ?`)
        .run(c.tokenId, c.now.getTime());
      if (spent.changes !== 1) return { code: "token-used" };
      this.upsertNode(c.node, c.facts, c.now, c.joinAddress);
      const bound = this.db.prepare(`SELECT sans FROM tokens WHERE id = ?`).get(c.tokenId) as { sans: string | null } | undefined;
      if (bound?.sans) this.insertGrants(c.node, tokenGrants(c.tokenId, JSON.parse(bound.sans) as TokenRecord["sans"], c.now));
      for (const cert of c.certificates) this.insertCert(cert);
      this.insertAudit(c.audit);
      return { code: "ok", replaced: existing };
    });
  }

  private newestClientSerial(node: string): string | undefined {
    // Insertion order (see latestCertificates).
    const r = this.db.prepare(`SELECT serial FROM certificates WHERE node = ? AND kind = 'client' ORDER BY rowid DESC LIMIT 1`).get(node) as { serial: string } | undefined;
    return r?.serial;
  }

  /**
   * A (re-)join starts a new lineage: certificates from before it can no longer renew. The API only
   * lets a re-join through with a token bound to the node, so it also lifts an eviction.
   */
  private upsertNode(name: string, facts: unknown, now: Date, joinAddress: string | undefined): void {
    this.db
      .prepare(
        `INSERT INTO nodes (name, facts, first_seen, last_seen, join_address) VALUES (?,?,?,?,?)
         ON CONFLICT(name) DO UPDATE SET facts = excluded.facts, last_seen = excluded.last_seen, confirmed_serial = NULL, evicted_at = NULL,
           join_address = COALESCE(excluded.join_address, join_address)`,
      )
      .run(name, JSON.stringify(facts), now.getTime(), now.getTime(), joinAddress ?? null);
  }

  private insertCert(c: IssuedCertRecord): void {
    this.db
      .prepare(`INSERT INTO certificates (serial, node, kind, not_before, not_after, fingerprint, issued_at, issuer_fp) VALUES (?,?,?,?,?,?,?,?)`)
      .run(c.serial, c.node, c.kind, c.notBefore.getTime(), c.notAfter.getTime(), c.fingerprint256, c.issuedAt.getTime(), c.issuerFingerprint ?? null);
    const san = this.db.prepare(`INSERT OR IGNORE INTO certificate_sans (serial, kind, value) VALUES (?,?,?)`);
    for (const d of c.sans?.dns ?? []) san.run(c.serial, "dns", d);
    for (const ip of c.sans?.ip ?? []) san.run(c.serial, "ip", ip);
  }

  private insertGrants(node: string, grants: SanGrant[]): void {
    const ins = this.db.prepare(`INSERT OR IGNORE INTO san_grants (node, kind, value, source, created_at) VALUES (?,?,?,?,?)`);
    for (const g of grants) ins.run(node, g.kind, g.value, g.source, g.createdAt.getTime());
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
    // Insertion order, not issued_at: a wall clock stepped backwards (NTP) must not make the newest
    // certificate look older than its predecessor.
    const rows = this.db.prepare(`SELECT * FROM certificates WHERE node = ? AND kind = ? ORDER BY rowid DESC LIMIT ?`).all(node, kind, limit) as CertRow[];
    return rows.map(certFromRow);
  }

  async commitRenewal(c: RenewalCommit): Promise<RenewalOutcome> {
    return this.grouped((): RenewalOutcome => {
      const row = this.db.prepare(`SELECT confirmed_serial, evicted_at FROM nodes WHERE name = ?`).get(c.node) as { confirmed_serial: string | null; evicted_at: number | null } | undefined;
      if (!row) return { code: "unknown-node" };
      if (row.evicted_at !== null) return { code: "evicted", at: new Date(row.evicted_at) };
      const newest = this.newestClientSerial(c.node);
      if (c.confirmedSerial !== newest && c.confirmedSerial !== row.confirmed_serial) return { code: "lineage", newest, confirmed: row.confirmed_serial ?? undefined };
      this.db.prepare(`UPDATE nodes SET facts = ?, last_seen = ?, confirmed_serial = ? WHERE name = ?`).run(JSON.stringify(c.facts), c.now.getTime(), c.confirmedSerial, c.node);
      for (const cert of c.certificates) this.insertCert(cert);
      this.insertAudit(c.audit);
      return { code: "ok" };
    });
  }

  async confirmClientSerial(node: string, serial: string): Promise<boolean> {
    return this.grouped((): boolean => {
      const row = this.db.prepare(`SELECT confirmed_serial FROM nodes WHERE name = ?`).get(node) as { confirmed_serial: string | null } | undefined;
      if (!row) return false;
      if (row.confirmed_serial === serial) return true;
      if (this.newestClientSerial(node) !== serial) return false;
      this.db.prepare(`UPDATE nodes SET confirmed_serial = ? WHERE name = ?`).run(serial, node);
      return true;
    });
  }

  async recordReport(name: string, report: NodeReport, at: Date): Promise<void> {
    // Grouped too: a campaign's hellos and statuses share fsyncs with the renewals they follow.
    await this.grouped(() => this.db.prepare(`UPDATE nodes SET reported = ?, last_hello = ?, last_seen = ? WHERE name = ?`).run(JSON.stringify(report), at.getTime(), at.getTime(), name));
  }

  async createCampaign(c: CampaignRecord, nodes: string[]): Promise<void> {
    this.db.transaction(() => {
      this.db
        .prepare(`INSERT INTO campaigns (id, created_at, state, max_in_flight, reason, which, key_algorithm) VALUES (?,?,?,?,?,?,?)`)
        .run(c.id, c.createdAt.getTime(), c.state, c.maxInFlight, c.reason, JSON.stringify(c.which), c.keyAlgorithm ?? null);
      const ins = this.db.prepare(`INSERT INTO campaign_nodes (campaign_id, node, state) VALUES (?, ?, 'pending')`);
      for (const n of nodes) ins.run(c.id, n);
    })();
  }

  async getCampaign(id: string): Promise<CampaignRecord | undefined> {
    const r = this.db.prepare(`SELECT * FROM campaigns WHERE id = ?`).get(id) as CampaignRow | undefined;
    return r ? campaignFromRow(r) : undefined;
  }

  async listCampaigns(): Promise<CampaignRecord[]> {
    return (this.db.prepare(`SELECT * FROM campaigns ORDER BY created_at, rowid`).all() as CampaignRow[]).map(campaignFromRow);
  }

  async updateCampaign(id: string, patch: Partial<Pick<CampaignRecord, "state" | "finishedAt">>): Promise<void> {
    if (patch.state) this.db.prepare(`UPDATE campaigns SET state = ? WHERE id = ?`).run(patch.state, id);
    if (patch.finishedAt) this.db.prepare(`UPDATE campaigns SET finished_at = ? WHERE id = ?`).run(patch.finishedAt.getTime(), id);
  }

  async listCampaignNodes(id: string, q: CampaignNodeQuery = {}): Promise<CampaignNodeRecord[]> {
    const where = ["campaign_id = ?"];
    const args: unknown[] = [id];
    if (q.state) {
      where.push("state = ?");
      args.push(q.state);
    }
    if (q.after !== undefined) {
      where.push("node > ?");
      args.push(q.after);
    }
    if (q.limit !== undefined) args.push(q.limit);
    const sql = `SELECT * FROM campaign_nodes WHERE ${where.join(" AND ")} ORDER BY node${q.limit !== undefined ? " LIMIT ?" : ""}`;
    return (this.db.prepare(sql).all(...args) as CampaignNodeRow[]).map(campaignNodeFromRow);
  }

  async getCampaignNode(id: string, node: string): Promise<CampaignNodeRecord | undefined> {
    const r = this.db.prepare(`SELECT * FROM campaign_nodes WHERE campaign_id = ? AND node = ?`).get(id, node) as CampaignNodeRow | undefined;
    return r ? campaignNodeFromRow(r) : undefined;
  }

  async countCampaignNodes(id: string): Promise<Record<CampaignNodeState, number>> {
    const counts: Record<CampaignNodeState, number> = { pending: 0, "in-flight": 0, done: 0, failed: 0 };
    const rows = this.db.prepare(`SELECT state, COUNT(*) AS n FROM campaign_nodes WHERE campaign_id = ? GROUP BY state`).all(id) as { state: CampaignNodeState; n: number }[];
    for (const r of rows) counts[r.state] = r.n;
    return counts;
  }

  async updateCampaignNode(id: string, node: string, patch: Partial<Omit<CampaignNodeRecord, "campaignId" | "node">>): Promise<void> {
    const cols: Record<string, unknown> = {};
    if ("state" in patch) cols.state = patch.state;
    if ("attempts" in patch) cols.attempts = patch.attempts;
    if ("lastError" in patch) cols.last_error = patch.lastError ?? null;
    if ("startedAt" in patch) cols.started_at = patch.startedAt?.getTime() ?? null;
    if ("finishedAt" in patch) cols.finished_at = patch.finishedAt?.getTime() ?? null;
    if ("commandId" in patch) cols.command_id = patch.commandId ?? null;
    if ("nextAttemptAt" in patch) cols.next_attempt_at = patch.nextAttemptAt?.getTime() ?? null;
    if ("serials" in patch) cols.serials = patch.serials ? JSON.stringify(patch.serials) : null;
    const keys = Object.keys(cols);
    if (!keys.length) return;
    this.db.prepare(`UPDATE campaign_nodes SET ${keys.map((k) => `${k} = ?`).join(", ")} WHERE campaign_id = ? AND node = ?`).run(...keys.map((k) => cols[k]), id, node);
  }

  async getKv<T>(key: string): Promise<T | undefined> {
    const r = this.db.prepare(`SELECT value FROM kv WHERE key = ?`).get(key) as { value: string } | undefined;
    return r ? (JSON.parse(r.value) as T) : undefined;
  }

  async setKv(key: string, value: unknown): Promise<void> {
    this.db.prepare(`INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`).run(key, JSON.stringify(value));
  }

  async setEvicted(name: string, at: Date | undefined): Promise<void> {
    this.db.prepare(`UPDATE nodes SET evicted_at = ? WHERE name = ?`).run(at ? at.getTime() : null, name);
  }

  async audit(e: AuditEvent): Promise<void> {
    return this.grouped(() => this.insertAudit(e));
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

  async pruneCertificates(before: Date): Promise<number> {
    const doomed = `SELECT serial FROM certificates WHERE not_after < @before
       AND rowid NOT IN (SELECT MAX(rowid) FROM certificates GROUP BY node, kind)
       AND serial NOT IN (SELECT confirmed_serial FROM nodes WHERE confirmed_serial IS NOT NULL)`;
    return this.db.transaction(() => {
      this.db.prepare(`DELETE FROM certificate_sans WHERE serial IN (${doomed})`).run({ before: before.getTime() });
      return this.db.prepare(`DELETE FROM certificates WHERE serial IN (${doomed})`).run({ before: before.getTime() }).changes;
    })();
  }

  async *auditBefore(before: Date): AsyncIterable<AuditEvent> {
    // Paged by id so a large backlog is never held in memory at once.
    let after = 0;
    for (;;) {
      const rows = this.db.prepare(`SELECT * FROM audit WHERE time < ? AND id > ? ORDER BY id LIMIT 1000`).all(before.getTime(), after) as { id: number; time: number; type: string; node: string | null; source: string | null; rule: string | null; reason: string | null; detail: string | null }[];
      for (const r of rows) {
        yield { time: new Date(r.time), type: r.type, node: r.node ?? undefined, source: r.source ?? undefined, rule: r.rule ?? undefined, reason: r.reason ?? undefined, detail: r.detail ? JSON.parse(r.detail) : undefined };
      }
      if (rows.length < 1000) return;
      after = rows[rows.length - 1].id;
    }
  }

  async pruneAudit(before: Date): Promise<number> {
    return this.db.prepare(`DELETE FROM audit WHERE time < ?`).run(before.getTime()).changes;
  }

  async listSanGrants(node: string): Promise<SanGrant[]> {
    const rows = this.db.prepare(`SELECT kind, value, source, created_at FROM san_grants WHERE node = ? ORDER BY rowid`).all(node) as { kind: SanGrant["kind"]; value: string; source: string; created_at: number }[];
    return rows.map((r) => ({ kind: r.kind, value: r.value, source: r.source, createdAt: new Date(r.created_at) }));
  }

  async addSanGrants(node: string, grants: SanGrant[], audit: AuditEvent): Promise<void> {
    this.db.transaction(() => {
      this.insertGrants(node, grants);
      this.insertAudit(audit);
    })();
  }

  async removeSanGrants(node: string, sans: { kind: SanGrant["kind"]; value: string }[], audit: AuditEvent): Promise<number> {
    return this.db.transaction(() => {
      const del = this.db.prepare(`DELETE FROM san_grants WHERE node = ? AND kind = ? AND value = ?`);
      let n = 0;
      for (const s of sans) n += del.run(node, s.kind, s.value).changes;
      this.insertAudit(audit);
      return n;
    })();
  }

  async sanHolders(sans: { kind: "dns" | "ip"; value: string }[], except: string, now: Date): Promise<SanHolding[]> {
    const byCert = this.db.prepare(
      `SELECT c.node FROM certificate_sans cs JOIN certificates c ON c.serial = cs.serial JOIN nodes n ON n.name = c.node
       WHERE cs.kind = ? AND cs.value = ? AND c.node != ? AND c.kind = 'serving' AND c.not_after > ? AND n.evicted_at IS NULL LIMIT 1`,
    );
    const byGrant = this.db.prepare(
      `SELECT g.node FROM san_grants g JOIN nodes n ON n.name = g.node WHERE g.kind = ? AND g.value = ? AND g.node != ? AND n.evicted_at IS NULL LIMIT 1`,
    );
    const byName = this.db.prepare(`SELECT name AS node FROM nodes WHERE name = ? AND name != ? AND evicted_at IS NULL`);
    const out: SanHolding[] = [];
    for (const s of sans) {
      const name = s.kind === "dns" ? (byName.get(s.value, except) as { node: string } | undefined) : undefined;
      const cert = name ? undefined : (byCert.get(s.kind, s.value, except, now.getTime()) as { node: string } | undefined);
      const grant = name || cert ? undefined : (byGrant.get(s.kind, s.value, except) as { node: string } | undefined);
      if (name) out.push({ ...s, node: name.node, via: "node-name" });
      else if (cert) out.push({ ...s, node: cert.node, via: "certificate" });
      else if (grant) out.push({ ...s, node: grant.node, via: "approval" });
    }
    return out;
  }

  async liveServingSans(node: string, now: Date): Promise<SanSet> {
    const rows = this.db
      .prepare(`SELECT DISTINCT cs.kind, cs.value FROM certificate_sans cs JOIN certificates c ON c.serial = cs.serial WHERE c.node = ? AND c.kind = 'serving' AND c.not_after > ? ORDER BY cs.value`)
      .all(node, now.getTime()) as { kind: string; value: string }[];
    return { dns: rows.filter((r) => r.kind === "dns").map((r) => r.value), ip: rows.filter((r) => r.kind === "ip").map((r) => r.value) };
  }

  async close(): Promise<void> {
    this.flush(); // what is queued is written before the file closes
    this.db.close();
  }
}
