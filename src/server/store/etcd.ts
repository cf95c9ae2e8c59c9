// etcd-backed store (etcd v3 through the etcd3 client), for several server replicas on one key
// prefix. Every read-check-write is an etcd transaction that compares the mod revisions of the
// keys it read (and retries on a conflict), so the guarantees are SQLite's IMMEDIATE transactions':
// a token use is spent once across all replicas, a join or renewal commits its records and audit
// event together or not at all, campaign and CA-rotation state change by compare-and-swap.
//
// Layout under the prefix (path parts URI-encoded):
//   tokens/<id>  nodes/<name>  certs/<serial>  node-certs/<node>/<kind>/<serial>
//   cert-sans/<kind>/<value>/<serial>  grants/<node>/<kind>/<value>  grants-by-value/<kind>/<value>/<node>
//   audit/<time>-<rand>  campaigns/<id>  campaign-nodes/<id>/<node>  kv/<key>
// "Order recorded" (newest certificate, audit order, grant order) is the key's create revision,
// etcd's own counter, never a clock.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { Etcd3, isRecoverableError, type IKeyValue, type Namespace, type IOptions } from "etcd3";
import { BrokenCircuitError, circuitBreaker, ConsecutiveBreaker, ExponentialBackoff, handleWhen, retry } from "cockatiel";
import type {
  AuditEvent,
  CampaignNodeQuery,
  CampaignNodeRecord,
  CampaignNodeState,
  CampaignRecord,
  IssuedCertRecord,
  IssuedKind,
  JoinCommit,
  JoinOutcome,
  NodeRecord,
  NodeReport,
  RenewalCommit,
  RenewalOutcome,
  SanGrant,
  SanHolding,
  Store,
} from "./store.js";
import { tokenGrants, type TokenRecord } from "../tokens.js";
import { normalizeIp, type SanSet } from "../../pki/names.js";

export interface EtcdStoreOptions {
  endpoints: string[];
  /** Key prefix shared by the replicas of one installation, e.g. "/nodecert/". */
  prefix: string;
  /** PEM file paths: the CA that signed etcd's certificates, and this replica's client certificate and key (mTLS). */
  tls?: { ca: string; cert?: string; key?: string };
  /** Per-request deadline (ms): a request etcd cannot answer in time fails, and the store turns unready. */
  requestTimeoutMs?: number;
  /** How often readiness is probed (ms); 0: only when probe() is called. */
  probeMs?: number;
}

/** Whether the store can serve linearizable reads and writes right now, and why not. */
export interface StoreReadiness {
  ready: boolean;
  reason?: string;
}

/** A store that can be unready (etcd); SQLite always is. */
export interface ReadinessSource {
  readiness(): StoreReadiness;
}

const MAX_CONFLICT_RETRIES = 64;
const enc = encodeURIComponent;
const ms = (d: Date | undefined) => (d ? d.getTime() : undefined);
const date = (n: number | undefined | null) => (n === undefined || n === null ? undefined : new Date(n));

// Stored shapes: dates as epoch ms, optional fields omitted.
interface TokenDoc extends Omit<TokenRecord, "expiresAt" | "createdAt"> {
  expiresAt: number;
  createdAt: number;
}
interface NodeDoc {
  name: string;
  facts: NodeRecord["facts"];
  firstSeen: number;
  lastSeen: number;
  joinAddress?: string;
  confirmedSerial?: string;
  evictedAt?: number;
  reported?: NodeReport;
  lastHello?: number;
  /** The newest client certificate recorded for the node (SQLite: the highest rowid). */
  newestClient?: string;
}
interface CertDoc extends Omit<IssuedCertRecord, "notBefore" | "notAfter" | "issuedAt"> {
  notBefore: number;
  notAfter: number;
  issuedAt: number;
}
interface CampaignDoc extends Omit<CampaignRecord, "createdAt" | "finishedAt"> {
  createdAt: number;
  finishedAt?: number;
}
interface CampaignNodeDoc extends Omit<CampaignNodeRecord, "startedAt" | "finishedAt" | "nextAttemptAt"> {
  startedAt?: number;
  finishedAt?: number;
  nextAttemptAt?: number;
}
interface AuditDoc extends Omit<AuditEvent, "time"> {
  time: number;
}

const tokenDoc = (t: TokenRecord): TokenDoc => ({ ...t, expiresAt: t.expiresAt.getTime(), createdAt: t.createdAt.getTime() });
const tokenRec = (d: TokenDoc): TokenRecord => ({ ...d, expiresAt: new Date(d.expiresAt), createdAt: new Date(d.createdAt), sans: d.sans });
const nodeRec = (d: NodeDoc): NodeRecord => {
  const { newestClient: _n, ...rest } = d;
  return {
    ...rest,
    firstSeen: new Date(d.firstSeen),
    lastSeen: new Date(d.lastSeen),
    evictedAt: date(d.evictedAt),
    lastHello: date(d.lastHello),
    joinAddress: d.joinAddress ? normalizeIp(d.joinAddress) : undefined,
    confirmedSerial: d.confirmedSerial,
    reported: d.reported,
  };
};
const certDoc = (c: IssuedCertRecord): CertDoc => ({ ...c, notBefore: c.notBefore.getTime(), notAfter: c.notAfter.getTime(), issuedAt: c.issuedAt.getTime() });
const certRec = (d: CertDoc): IssuedCertRecord => {
  const { sans: _s, ...rest } = d;
  return { ...rest, notBefore: new Date(d.notBefore), notAfter: new Date(d.notAfter), issuedAt: new Date(d.issuedAt), issuerFingerprint: d.issuerFingerprint };
};
const campaignDoc = (c: CampaignRecord): CampaignDoc => ({ ...c, createdAt: c.createdAt.getTime(), finishedAt: ms(c.finishedAt) });
const campaignRec = (d: CampaignDoc): CampaignRecord => ({ ...d, createdAt: new Date(d.createdAt), finishedAt: date(d.finishedAt), keyAlgorithm: d.keyAlgorithm });
const campaignNodeRec = (d: CampaignNodeDoc): CampaignNodeRecord => ({
  campaignId: d.campaignId,
  node: d.node,
  state: d.state,
  attempts: d.attempts,
  lastError: d.lastError,
  startedAt: date(d.startedAt),
  finishedAt: date(d.finishedAt),
  commandId: d.commandId,
  nextAttemptAt: date(d.nextAttemptAt),
  serials: d.serials,
});
const auditDoc = (e: AuditEvent): AuditDoc => ({ ...e, time: e.time.getTime() });
const auditRec = (d: AuditDoc): AuditEvent => ({ ...d, time: new Date(d.time) });

const K = {
  token: (id: string) => `tokens/${enc(id)}`,
  node: (name: string) => `nodes/${enc(name)}`,
  nodes: "nodes/",
  cert: (serial: string) => `certs/${enc(serial)}`,
  certs: "certs/",
  nodeCert: (node: string, kind: string, serial: string) => `node-certs/${enc(node)}/${kind}/${enc(serial)}`,
  nodeCerts: (node: string, kind?: string) => `node-certs/${enc(node)}/${kind ? `${kind}/` : ""}`,
  certSan: (kind: string, value: string, serial: string) => `cert-sans/${kind}/${enc(value)}/${enc(serial)}`,
  certSans: (kind: string, value: string) => `cert-sans/${kind}/${enc(value)}/`,
  grant: (node: string, kind: string, value: string) => `grants/${enc(node)}/${kind}/${enc(value)}`,
  grants: (node: string) => `grants/${enc(node)}/`,
  grantByValue: (kind: string, value: string, node: string) => `grants-by-value/${kind}/${enc(value)}/${enc(node)}`,
  grantsByValue: (kind: string, value: string) => `grants-by-value/${kind}/${enc(value)}/`,
  audit: (t: Date) => `audit/${String(t.getTime()).padStart(15, "0")}-${randomBytes(6).toString("hex")}`,
  audits: "audit/",
  campaign: (id: string) => `campaigns/${enc(id)}`,
  campaigns: "campaigns/",
  campaignNode: (id: string, node: string) => `campaign-nodes/${enc(id)}/${enc(node)}`,
  campaignNodes: (id: string) => `campaign-nodes/${enc(id)}/`,
  kv: (key: string) => `kv/${enc(key)}`,
};

/** What a transaction body decided: its result, and the writes to make if the reads are still current. */
interface TxnPlan<T> {
  result: T;
  puts?: [string, unknown][];
  deletes?: string[];
}

/** Reads inside a transaction: every key read is compared on its mod revision at commit. */
interface TxnReader {
  get<T>(key: string): Promise<T | undefined>;
}

export class StoreUnavailableError extends Error {
  readonly code = "store-unavailable";
}

export class EtcdStore implements Store, ReadinessSource {
  readonly client: Etcd3;
  readonly ns: Namespace;
  private state: StoreReadiness = { ready: true };
  // Calls and probes overlap (a probe can hang for the whole deadline during an election): the
  // outcome of the one that started last decides, so a stale failure never hides a later success.
  private started = 0;
  private decided = 0;
  private probing = false;
  private probeTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(readonly o: EtcdStoreOptions) {
    if (!o.endpoints.length) throw new Error("store.endpoints is empty: list the etcd client URLs (https://host:2379)");
    const timeout = o.requestTimeoutMs ?? 3000;
    const opts: IOptions = {
      hosts: o.endpoints,
      dialTimeout: timeout,
      // Streams (watches, elections) have no deadline; every unary request does.
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeout }),
      // A member that failed is skipped for 1 s (etcd3's default: 5 s), and a request tries every
      // member before it fails: a replica is signing again within about a second of etcd's return.
      faultHandling: {
        host: () => circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(3) }),
        // A member whose breaker is open is no answer: try the next one.
        global: retry(handleWhen((e) => isRecoverableError(e) || e instanceof BrokenCircuitError), { maxAttempts: Math.max(3, o.endpoints.length * 2), backoff: new ExponentialBackoff({ initialDelay: 20, maxDelay: 200 }) }),
      },
    };
    if (o.tls) {
      const read = (what: string, f: string) => {
        try {
          return readFileSync(f);
        } catch (e) {
          throw new Error(`cannot read store.tls.${what} (${f}): ${(e as NodeJS.ErrnoException).code}; point it at the PEM file etcd's client TLS needs`, { cause: e });
        }
      };
      opts.credentials = { rootCertificate: read("ca", o.tls.ca), certChain: o.tls.cert ? read("cert", o.tls.cert) : undefined, privateKey: o.tls.key ? read("key", o.tls.key) : undefined };
    }
    this.client = new Etcd3(opts);
    this.ns = this.client.namespace(o.prefix);
    if (o.probeMs) {
      this.probeTimer = setInterval(() => void this.probe(), o.probeMs);
      this.probeTimer.unref();
    }
  }

  readiness(): StoreReadiness {
    return this.state;
  }

  /** A linearizable read (needs an etcd quorum): ready when it answers, unready with etcd's error when not. */
  async probe(): Promise<StoreReadiness> {
    // One probe at a time: timer ticks while one hangs would only pile up requests.
    if (this.probing) return this.state;
    this.probing = true;
    const n = ++this.started;
    try {
      await this.ns.get("kv/probe").exec();
      this.decide(n, undefined);
    } catch (e) {
      this.decide(n, e);
    } finally {
      this.probing = false;
    }
    return this.state;
  }

  private unavailable(e: unknown): string {
    return `the etcd store (${this.o.endpoints.join(", ")}) does not answer: ${(e as Error).message}`;
  }

  /** Records the outcome of request number n (undefined: it succeeded) unless a later one has decided. */
  private decide(n: number, e: unknown): void {
    if (this.closed || n < this.decided) return;
    this.decided = n;
    this.state = e === undefined ? { ready: true } : { ready: false, reason: this.unavailable(e) };
  }

  /** Runs an etcd call; a failure to reach etcd marks the store unready and says so. */
  private async call<T>(fn: () => Promise<T>): Promise<T> {
    const n = ++this.started;
    try {
      const v = await fn();
      this.decide(n, undefined);
      return v;
    } catch (e) {
      if (e instanceof StoreUnavailableError) throw e;
      this.decide(n, e);
      throw new StoreUnavailableError(this.unavailable(e));
    }
  }

  /**
   * Optimistic transaction: `body` reads through the reader, decides, and names its writes; they
   * are committed only if no key it read changed meanwhile (etcd compares mod revisions), else the
   * body runs again on fresh data. So concurrent replicas serialise like SQLite's IMMEDIATE.
   */
  private txn<T>(body: (r: TxnReader) => Promise<TxnPlan<T>>): Promise<T> {
    return this.call(async () => {
      for (let attempt = 0; attempt < MAX_CONFLICT_RETRIES; attempt++) {
        const reads = new Map<string, { rev: string; value: unknown }>();
        const reader: TxnReader = {
          get: async <V>(key: string) => {
            const seen = reads.get(key);
            if (seen) return seen.value as V | undefined;
            const res = await this.ns.get(key).exec();
            const kv = res.kvs[0];
            const value = kv ? JSON.parse(kv.value.toString()) : undefined;
            reads.set(key, { rev: kv ? kv.mod_revision : "0", value });
            return value as V | undefined;
          },
        };
        const plan = await body(reader);
        const writes = [...(plan.puts ?? []).map(([k, v]) => this.ns.put(k).value(JSON.stringify(v))), ...(plan.deletes ?? []).map((k) => this.ns.delete().key(k))];
        if (!writes.length) return plan.result;
        const keys = [...reads.keys()];
        // etcd3 has no condition-less txn builder: with nothing read, compare a condition that always holds.
        let cmp = keys.length ? this.ns.if(keys[0], "Mod", "==", reads.get(keys[0])!.rev) : this.ns.if(plan.puts?.[0]?.[0] ?? plan.deletes![0], "Version", ">", -1);
        for (const k of keys.slice(1)) cmp = cmp.and(k, "Mod", "==", reads.get(k)!.rev);
        const res = await cmp.then(...writes).commit();
        if (res.succeeded) return plan.result;
      }
      throw new Error(`etcd transaction kept conflicting (${MAX_CONFLICT_RETRIES} attempts): too many replicas writing the same keys at once; retry`);
    });
  }

  private async getJson<T>(key: string): Promise<T | undefined> {
    return this.call(async () => {
      const v = await this.ns.get(key).string();
      return v === null ? undefined : (JSON.parse(v) as T);
    });
  }

  /** Every key under a prefix, in create-revision order (the order they were recorded). */
  private async list<T>(prefix: string, o: { newestFirst?: boolean; limit?: number; from?: string } = {}): Promise<{ key: string; value: T; kv: IKeyValue }[]> {
    return this.call(async () => {
      let q = o.from ? this.ns.getAll().inRange({ start: o.from, end: prefixEnd(prefix) }) : this.ns.getAll().prefix(prefix);
      q = q.sort("Create", o.newestFirst ? "Descend" : "Ascend");
      if (o.limit !== undefined) q = q.limit(o.limit);
      const res = await q.exec();
      return res.kvs.map((kv) => ({ key: kv.key.toString(), value: JSON.parse(kv.value.toString()) as T, kv }));
    });
  }

  /** Writes that record a certificate: its record, the node's index, SAN index, the node's newest client serial. */
  private certWrites(c: IssuedCertRecord): [string, unknown][] {
    const doc = certDoc(c);
    const puts: [string, unknown][] = [
      [K.cert(c.serial), doc],
      [K.nodeCert(c.node, c.kind, c.serial), doc],
    ];
    for (const d of c.sans?.dns ?? []) puts.push([K.certSan("dns", d, c.serial), { node: c.node, kind: c.kind, notAfter: doc.notAfter }]);
    for (const ip of c.sans?.ip ?? []) puts.push([K.certSan("ip", ip, c.serial), { node: c.node, kind: c.kind, notAfter: doc.notAfter }]);
    return puts;
  }

  private grantWrites(node: string, grants: SanGrant[], existing: Set<string>): [string, unknown][] {
    const puts: [string, unknown][] = [];
    for (const [order, g] of grants.entries()) {
      const k = K.grant(node, g.kind, g.value);
      if (existing.has(k)) continue; // an existing grant of the same SAN is kept (INSERT OR IGNORE)
      existing.add(k);
      // Keys written in one transaction share a create revision: `order` keeps their order.
      puts.push([k, { kind: g.kind, value: g.value, source: g.source, createdAt: g.createdAt.getTime(), order }], [K.grantByValue(g.kind, g.value, node), { node }]);
    }
    return puts;
  }

  async insertToken(t: TokenRecord): Promise<void> {
    const created = await this.call(() => this.ns.if(K.token(t.id), "Create", "==", 0).then(this.ns.put(K.token(t.id)).value(JSON.stringify(tokenDoc(t)))).commit());
    if (!created.succeeded) throw new Error(`a token with id ${t.id} exists already`);
  }

  async getToken(id: string): Promise<TokenRecord | undefined> {
    const d = await this.getJson<TokenDoc>(K.token(id));
    return d ? tokenRec(d) : undefined;
  }

  async commitJoin(c: JoinCommit): Promise<JoinOutcome> {
    return this.txn(async (r): Promise<TxnPlan<JoinOutcome>> => {
      const existingDoc = await r.get<NodeDoc>(K.node(c.node));
      const existing = existingDoc ? nodeRec(existingDoc) : undefined;
      if (existing && !c.mayReplace) return { result: { code: "existing-node", node: existing } };
      const token = await r.get<TokenDoc>(K.token(c.tokenId));
      if (!token || token.usesLeft <= 0 || token.expiresAt <= c.now.getTime()) return { result: { code: "token-used" } };
      const now = c.now.getTime();
      // A (re-)join starts a new lineage and lifts an eviction (as SQLite's upsert).
      const node: NodeDoc = {
        name: c.node,
        facts: c.facts,
        firstSeen: existingDoc?.firstSeen ?? now,
        lastSeen: now,
        joinAddress: c.joinAddress ?? existingDoc?.joinAddress,
        reported: existingDoc?.reported,
        lastHello: existingDoc?.lastHello,
        newestClient: existingDoc?.newestClient,
      };
      const puts: [string, unknown][] = [[K.token(c.tokenId), { ...token, usesLeft: token.usesLeft - 1 }]];
      if (token.sans) {
        const have = new Set<string>();
        for (const g of tokenGrants(c.tokenId, token.sans, c.now)) if (await r.get(K.grant(c.node, g.kind, g.value))) have.add(K.grant(c.node, g.kind, g.value));
        puts.push(...this.grantWrites(c.node, tokenGrants(c.tokenId, token.sans, c.now), have));
      }
      for (const cert of c.certificates) {
        puts.push(...this.certWrites(cert));
        if (cert.kind === "client") node.newestClient = cert.serial;
      }
      puts.push([K.node(c.node), node], [K.audit(c.audit.time), auditDoc(c.audit)]);
      return { result: { code: "ok", replaced: existing }, puts };
    });
  }

  async recordCertificate(c: IssuedCertRecord): Promise<void> {
    await this.txn(async (r) => {
      const puts = this.certWrites(c);
      if (c.kind === "client") {
        const node = await r.get<NodeDoc>(K.node(c.node));
        if (node) puts.push([K.node(c.node), { ...node, newestClient: c.serial }]);
      }
      return { result: undefined, puts };
    });
  }

  async getCertificate(serial: string): Promise<IssuedCertRecord | undefined> {
    const d = await this.getJson<CertDoc>(K.cert(serial));
    return d ? certRec(d) : undefined;
  }

  async listCertificates(node?: string): Promise<IssuedCertRecord[]> {
    const rows = await this.list<CertDoc>(node ? K.nodeCerts(node) : K.certs);
    // issued_at order, ties in recorded order (Array.prototype.sort is stable).
    return rows.map((r) => certRec(r.value)).sort((a, b) => a.issuedAt.getTime() - b.issuedAt.getTime());
  }

  async latestCertificates(node: string, kind: IssuedKind, limit: number): Promise<IssuedCertRecord[]> {
    return (await this.list<CertDoc>(K.nodeCerts(node, kind), { newestFirst: true, limit })).map((r) => certRec(r.value));
  }

  async commitRenewal(c: RenewalCommit): Promise<RenewalOutcome> {
    return this.txn(async (r): Promise<TxnPlan<RenewalOutcome>> => {
      const node = await r.get<NodeDoc>(K.node(c.node));
      if (!node) return { result: { code: "unknown-node" } };
      if (node.evictedAt !== undefined) return { result: { code: "evicted", at: new Date(node.evictedAt) } };
      if (c.confirmedSerial !== node.newestClient && c.confirmedSerial !== node.confirmedSerial) return { result: { code: "lineage", newest: node.newestClient, confirmed: node.confirmedSerial } };
      const next: NodeDoc = { ...node, facts: c.facts, lastSeen: c.now.getTime(), confirmedSerial: c.confirmedSerial };
      const puts: [string, unknown][] = [];
      for (const cert of c.certificates) {
        puts.push(...this.certWrites(cert));
        if (cert.kind === "client") next.newestClient = cert.serial;
      }
      puts.push([K.node(c.node), next], [K.audit(c.audit.time), auditDoc(c.audit)]);
      return { result: { code: "ok" }, puts };
    });
  }

  async confirmClientSerial(node: string, serial: string): Promise<boolean> {
    return this.txn(async (r): Promise<TxnPlan<boolean>> => {
      const n = await r.get<NodeDoc>(K.node(node));
      if (!n) return { result: false };
      if (n.confirmedSerial === serial) return { result: true };
      if (n.newestClient !== serial) return { result: false };
      return { result: true, puts: [[K.node(node), { ...n, confirmedSerial: serial }]] };
    });
  }

  private updateNode(name: string, change: (n: NodeDoc) => NodeDoc): Promise<void> {
    return this.txn(async (r) => {
      const n = await r.get<NodeDoc>(K.node(name));
      return { result: undefined, puts: n ? [[K.node(name), change(n)]] : [] };
    });
  }

  setEvicted(name: string, at: Date | undefined): Promise<void> {
    return this.updateNode(name, (n) => ({ ...n, evictedAt: ms(at) }));
  }

  recordReport(name: string, report: NodeReport, at: Date): Promise<void> {
    return this.updateNode(name, (n) => ({ ...n, reported: report, lastHello: at.getTime(), lastSeen: at.getTime() }));
  }

  async createCampaign(c: CampaignRecord, nodes: string[]): Promise<void> {
    // One transaction: etcd bounds its size (--max-txn-ops, 128 by default), so a large fleet's
    // node rows go first in batches and the campaign record last: a campaign is visible (and
    // runs) only once all its nodes are written.
    const rows = nodes.map((n): [string, CampaignNodeDoc] => [K.campaignNode(c.id, n), { campaignId: c.id, node: n, state: "pending", attempts: 0 }]);
    for (let i = 0; i < rows.length; i += 100) {
      const batch = rows.slice(i, i + 100);
      const r = await this.call(() => this.ns.if(K.campaign(c.id), "Create", "==", 0).then(...batch.map(([k, v]) => this.ns.put(k).value(JSON.stringify(v)))).commit());
      if (!r.succeeded) throw new Error(`a campaign with id ${c.id} exists already`);
    }
    const created = await this.call(() => this.ns.if(K.campaign(c.id), "Create", "==", 0).then(this.ns.put(K.campaign(c.id)).value(JSON.stringify(campaignDoc(c)))).commit());
    if (!created.succeeded) throw new Error(`a campaign with id ${c.id} exists already`);
  }

  async getCampaign(id: string): Promise<CampaignRecord | undefined> {
    const d = await this.getJson<CampaignDoc>(K.campaign(id));
    return d ? campaignRec(d) : undefined;
  }

  async listCampaigns(): Promise<CampaignRecord[]> {
    return (await this.list<CampaignDoc>(K.campaigns)).map((r) => campaignRec(r.value)).sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
  }

  async updateCampaign(id: string, patch: Partial<Pick<CampaignRecord, "state" | "finishedAt">>): Promise<void> {
    await this.txn(async (r) => {
      const c = await r.get<CampaignDoc>(K.campaign(id));
      if (!c) return { result: undefined };
      const next = { ...c, ...(patch.state ? { state: patch.state } : {}), ...(patch.finishedAt ? { finishedAt: patch.finishedAt.getTime() } : {}) };
      return { result: undefined, puts: [[K.campaign(id), next]] };
    });
  }

  async listCampaignNodes(id: string, q: CampaignNodeQuery = {}): Promise<CampaignNodeRecord[]> {
    const prefix = K.campaignNodes(id);
    // Keys sort by the encoded name; encodeURIComponent keeps [a-z0-9.-] (node names) as they are.
    const rows = await this.call(async () => {
      const range = q.after !== undefined ? this.ns.getAll().inRange({ start: `${prefix}${enc(q.after)}\0`, end: prefixEnd(prefix) }) : this.ns.getAll().prefix(prefix);
      return (await range.sort("Key", "Ascend").exec()).kvs.map((kv) => JSON.parse(kv.value.toString()) as CampaignNodeDoc);
    });
    const out: CampaignNodeRecord[] = [];
    for (const d of rows) {
      if (q.state && d.state !== q.state) continue;
      out.push(campaignNodeRec(d));
      if (q.limit !== undefined && out.length >= q.limit) break;
    }
    return out;
  }

  async getCampaignNode(id: string, node: string): Promise<CampaignNodeRecord | undefined> {
    const d = await this.getJson<CampaignNodeDoc>(K.campaignNode(id, node));
    return d ? campaignNodeRec(d) : undefined;
  }

  async countCampaignNodes(id: string): Promise<Record<CampaignNodeState, number>> {
    const counts: Record<CampaignNodeState, number> = { pending: 0, "in-flight": 0, done: 0, failed: 0 };
    for (const r of await this.list<CampaignNodeDoc>(K.campaignNodes(id))) counts[r.value.state]++;
    return counts;
  }

  async updateCampaignNode(id: string, node: string, patch: Partial<Omit<CampaignNodeRecord, "campaignId" | "node">>): Promise<void> {
    await this.txn(async (r) => {
      const d = await r.get<CampaignNodeDoc>(K.campaignNode(id, node));
      if (!d) return { result: undefined };
      const next: CampaignNodeDoc = { ...d };
      if ("state" in patch && patch.state) next.state = patch.state;
      if ("attempts" in patch && patch.attempts !== undefined) next.attempts = patch.attempts;
      if ("lastError" in patch) next.lastError = patch.lastError;
      if ("startedAt" in patch) next.startedAt = ms(patch.startedAt);
      if ("finishedAt" in patch) next.finishedAt = ms(patch.finishedAt);
      if ("commandId" in patch) next.commandId = patch.commandId;
      if ("nextAttemptAt" in patch) next.nextAttemptAt = ms(patch.nextAttemptAt);
      if ("serials" in patch) next.serials = patch.serials;
      return { result: undefined, puts: [[K.campaignNode(id, node), next]] };
    });
  }

  getKv<T>(key: string): Promise<T | undefined> {
    return this.getJson<T>(K.kv(key));
  }

  async setKv(key: string, value: unknown): Promise<void> {
    await this.call(() => this.ns.put(K.kv(key)).value(JSON.stringify(value)).exec());
  }

  /** Compare-and-swap on a kv entry: writes `value` only if the entry still equals `expected` (undefined: absent). */
  async casKv(key: string, expected: unknown, value: unknown): Promise<boolean> {
    return this.txn(async (r): Promise<TxnPlan<boolean>> => {
      const cur = await r.get(K.kv(key));
      if (JSON.stringify(cur) !== JSON.stringify(expected)) return { result: false };
      return { result: true, puts: [[K.kv(key), value]] };
    });
  }

  async getNode(name: string): Promise<NodeRecord | undefined> {
    const d = await this.getJson<NodeDoc>(K.node(name));
    return d ? nodeRec(d) : undefined;
  }

  async listNodes(): Promise<NodeRecord[]> {
    const rows = await this.call(async () => (await this.ns.getAll().prefix(K.nodes).sort("Key", "Ascend").exec()).kvs.map((kv) => JSON.parse(kv.value.toString()) as NodeDoc));
    return rows.map(nodeRec).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async audit(e: AuditEvent): Promise<void> {
    await this.call(() => this.ns.put(K.audit(e.time)).value(JSON.stringify(auditDoc(e))).exec());
  }

  async listAudit(limit = 1000): Promise<AuditEvent[]> {
    return (await this.list<AuditDoc>(K.audits, { newestFirst: true, limit })).map((r) => auditRec(r.value));
  }

  async listSanGrants(node: string): Promise<SanGrant[]> {
    const rows = (await this.list<{ kind: SanGrant["kind"]; value: string; source: string; createdAt: number; order?: number }>(K.grants(node))).sort(
      (a, b) => Number(BigInt(a.kv.create_revision) - BigInt(b.kv.create_revision)) || (a.value.order ?? 0) - (b.value.order ?? 0),
    );
    return rows.map((r) => ({ kind: r.value.kind, value: r.value.value, source: r.value.source, createdAt: new Date(r.value.createdAt) }));
  }

  async addSanGrants(node: string, grants: SanGrant[], audit: AuditEvent): Promise<void> {
    await this.txn(async (r) => {
      const have = new Set<string>();
      for (const g of grants) if (await r.get(K.grant(node, g.kind, g.value))) have.add(K.grant(node, g.kind, g.value));
      return { result: undefined, puts: [...this.grantWrites(node, grants, have), [K.audit(audit.time), auditDoc(audit)]] };
    });
  }

  async removeSanGrants(node: string, sans: { kind: SanGrant["kind"]; value: string }[], audit: AuditEvent): Promise<number> {
    return this.txn(async (r): Promise<TxnPlan<number>> => {
      const deletes: string[] = [];
      for (const s of sans) {
        const k = K.grant(node, s.kind, s.value);
        if (!deletes.includes(k) && (await r.get(k))) deletes.push(k, K.grantByValue(s.kind, s.value, node));
      }
      return { result: deletes.length / 2, puts: [[K.audit(audit.time), auditDoc(audit)]], deletes };
    });
  }

  async sanHolders(sans: { kind: "dns" | "ip"; value: string }[], except: string, now: Date): Promise<SanHolding[]> {
    const out: SanHolding[] = [];
    const live = async (name: string) => {
      const n = await this.getJson<NodeDoc>(K.node(name));
      return n !== undefined && n.evictedAt === undefined;
    };
    for (const s of sans) {
      if (s.kind === "dns" && s.value !== except && (await live(s.value))) {
        out.push({ ...s, node: s.value, via: "node-name" });
        continue;
      }
      let found: SanHolding | undefined;
      for (const r of await this.list<{ node: string; kind: string; notAfter: number }>(K.certSans(s.kind, s.value))) {
        if (r.value.node !== except && r.value.kind === "serving" && r.value.notAfter > now.getTime() && (await live(r.value.node))) {
          found = { ...s, node: r.value.node, via: "certificate" };
          break;
        }
      }
      if (!found) {
        for (const r of await this.list<{ node: string }>(K.grantsByValue(s.kind, s.value))) {
          if (r.value.node !== except && (await live(r.value.node))) {
            found = { ...s, node: r.value.node, via: "approval" };
            break;
          }
        }
      }
      if (found) out.push(found);
    }
    return out;
  }

  async liveServingSans(node: string, now: Date): Promise<SanSet> {
    const dns = new Set<string>();
    const ip = new Set<string>();
    for (const r of await this.list<CertDoc>(K.nodeCerts(node, "serving"))) {
      if (r.value.notAfter <= now.getTime()) continue;
      for (const d of r.value.sans?.dns ?? []) dns.add(d);
      for (const i of r.value.sans?.ip ?? []) ip.add(i);
    }
    return { dns: [...dns].sort(), ip: [...ip].sort() };
  }

  /** Retention: issuance records of certificates expired before `before`, except each node's newest of every kind and its confirmed one. */
  async pruneCertificates(before: Date): Promise<number> {
    const rows = await this.list<CertDoc>("node-certs/");
    const keep = new Set<string>();
    const newest = new Map<string, { rev: bigint; serial: string }>();
    for (const r of rows) {
      const k = `${r.value.node}/${r.value.kind}`;
      const rev = BigInt(r.kv.create_revision);
      const cur = newest.get(k);
      if (!cur || rev >= cur.rev) newest.set(k, { rev, serial: r.value.serial });
    }
    for (const v of newest.values()) keep.add(v.serial);
    for (const n of await this.listNodes()) if (n.confirmedSerial) keep.add(n.confirmedSerial);
    const gone = rows.filter((r) => r.value.notAfter < before.getTime() && !keep.has(r.value.serial));
    for (let i = 0; i < gone.length; i += 20) {
      const part = gone.slice(i, i + 20);
      const keys = part.flatMap((r) => [K.cert(r.value.serial), K.nodeCert(r.value.node, r.value.kind, r.value.serial), ...(r.value.sans?.dns ?? []).map((d) => K.certSan("dns", d, r.value.serial)), ...(r.value.sans?.ip ?? []).map((ip) => K.certSan("ip", ip, r.value.serial))]);
      await this.call(() => this.ns.if(keys[0], "Version", ">", -1).then(...keys.map((k) => this.ns.delete().key(k))).commit());
    }
    return gone.length;
  }

  /** Audit events older than `before`, oldest first (keys start with the zero-padded time). */
  async *auditBefore(before: Date): AsyncIterable<AuditEvent> {
    const rows = await this.call(async () => (await this.ns.getAll().inRange({ start: K.audits, end: `${K.audits}${String(before.getTime()).padStart(15, "0")}` }).sort("Create", "Ascend").exec()).kvs);
    for (const kv of rows) yield auditRec(JSON.parse(kv.value.toString()) as AuditDoc);
  }

  async pruneAudit(before: Date): Promise<number> {
    const res = await this.call(() => this.ns.delete().inRange({ start: K.audits, end: `${K.audits}${String(before.getTime()).padStart(15, "0")}` }).exec());
    return Number(res.deleted);
  }

  /** Whether anything is stored under the prefix (a migration refuses to write over it). */
  async isEmpty(): Promise<boolean> {
    return this.call(async () => (await this.ns.getAll().prefix("").count()) === 0);
  }

  /**
   * Bulk import (migrate-store), in the order given: certificates and audit events one request
   * each, so their create revisions keep the order they were recorded in; the rest in batches.
   */
  async importAll(d: { tokens: TokenRecord[]; nodes: NodeRecord[]; certificates: IssuedCertRecord[]; audit: AuditEvent[]; campaigns: { campaign: CampaignRecord; nodes: CampaignNodeRecord[] }[]; kv: [string, unknown][]; grants: { node: string; grant: SanGrant }[] }): Promise<void> {
    const batch = async (puts: [string, unknown][]) => {
      for (let i = 0; i < puts.length; i += 100) {
        const part = puts.slice(i, i + 100);
        await this.call(() => this.ns.if(part[0][0], "Version", ">", -1).then(...part.map(([k, v]) => this.ns.put(k).value(JSON.stringify(v)))).commit());
      }
    };
    const newest = new Map<string, string>();
    for (const c of d.certificates) if (c.kind === "client") newest.set(c.node, c.serial);
    await batch(d.tokens.map((t) => [K.token(t.id), tokenDoc(t)]));
    await batch(
      d.nodes.map((n): [string, NodeDoc] => [
        K.node(n.name),
        { name: n.name, facts: n.facts, firstSeen: n.firstSeen.getTime(), lastSeen: n.lastSeen.getTime(), joinAddress: n.joinAddress, confirmedSerial: n.confirmedSerial, evictedAt: ms(n.evictedAt), reported: n.reported, lastHello: ms(n.lastHello), newestClient: newest.get(n.name) },
      ]),
    );
    for (const c of d.certificates) await batch(this.certWrites(c));
    const seen = new Set<string>();
    for (const { node, grant } of d.grants) await batch(this.grantWrites(node, [grant], seen));
    for (const e of d.audit) await this.call(() => this.ns.put(K.audit(e.time)).value(JSON.stringify(auditDoc(e))).exec());
    for (const { campaign, nodes } of d.campaigns) {
      await batch(nodes.map((n) => [K.campaignNode(campaign.id, n.node), { ...n, startedAt: ms(n.startedAt), finishedAt: ms(n.finishedAt), nextAttemptAt: ms(n.nextAttemptAt) }]));
      await batch([[K.campaign(campaign.id), campaignDoc(campaign)]]);
    }
    await batch(d.kv.map(([k, v]) => [K.kv(k), v]));
  }

  /** How many records of each kind are stored (migrate-store verifies the copy with these). */
  async counts(): Promise<Record<string, number>> {
    const n = (p: string) => this.call(() => this.ns.getAll().prefix(p).count());
    return { tokens: await n("tokens/"), nodes: await n("nodes/"), certificates: await n("certs/"), audit: await n("audit/"), campaigns: await n("campaigns/"), campaignNodes: await n("campaign-nodes/"), grants: await n("grants/") };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.probeTimer);
    this.client.close();
  }
}

/** The first key after every key that starts with `prefix` (etcd's range_end for a prefix). */
function prefixEnd(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}
