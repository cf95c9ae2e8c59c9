// The server's state behind a small async interface, so SQLite and etcd (HA) can both back it.
import type { TokenRecord } from "../tokens.js";
import type { NodeFacts } from "../../protocol/messages.js";
import type { SanSet } from "../../pki/names.js";

export type IssuedKind = "client" | "serving" | "server" | "admin";

export interface IssuedCertRecord {
  serial: string;
  node: string; // node name, or "nodecert:admin" / "nodecert:server"
  kind: IssuedKind;
  notBefore: Date;
  notAfter: Date;
  fingerprint256: string;
  issuedAt: Date;
  /** SHA-256 fingerprint of the CA certificate that signed it (for CA rotation). */
  issuerFingerprint?: string;
  /** Serving certificates: their SANs, so no other node is given the same name or address. */
  sans?: SanSet;
}

/** Permission for a node to hold a serving SAN, recorded by an operator (directly or in a token). */
export interface SanGrant {
  kind: "dns" | "ip" | "cidr";
  /** Lowercased DNS name, normalised IP, or CIDR. */
  value: string;
  /** "operator" or "token:<id>". */
  source: string;
  createdAt: Date;
}

/** Another node that holds a SAN. */
export interface SanHolding {
  kind: "dns" | "ip";
  value: string;
  node: string;
  via: "certificate" | "approval" | "node-name";
}

export interface NodeRecord {
  name: string;
  facts: NodeFacts;
  firstSeen: Date;
  lastSeen: Date;
  /** The source address of the node's last successful join (IPv4-mapped IPv6 as IPv4). */
  joinAddress?: string;
  /** The last client certificate the node proved it holds (authenticated with). */
  confirmedSerial?: string;
  evictedAt?: Date;
  /** What the agent last reported over the channel (hello/status). */
  reported?: NodeReport;
  lastHello?: Date;
}

export interface NodeReport {
  agentVersion: string;
  fips: boolean;
  cryptoProvider: string;
  certificates: { kind: "client" | "serving"; serial: string; notAfter: string; keyAlgorithm: string; issuer?: string }[];
  addresses: string[];
  trustBundleSha256?: string;
}

export type CampaignState = "running" | "done" | "cancelled";
export type CampaignNodeState = "pending" | "in-flight" | "done" | "failed";

export interface CampaignRecord {
  id: string;
  createdAt: Date;
  state: CampaignState;
  maxInFlight: number;
  reason: string;
  which: ("client" | "serving")[];
  keyAlgorithm?: string;
  finishedAt?: Date;
}

export interface CampaignNodeRecord {
  campaignId: string;
  node: string;
  state: CampaignNodeState;
  attempts: number;
  lastError?: string;
  startedAt?: Date;
  finishedAt?: Date;
  commandId?: string;
  nextAttemptAt?: Date;
  serials?: { client?: string; serving?: string };
}

export interface CampaignNodeQuery {
  state?: CampaignNodeState;
  /** Only nodes whose name sorts after this one (to read a campaign page by page). */
  after?: string;
  limit?: number;
}

export interface AuditEvent {
  time: Date;
  type: string; // e.g. join.issued, join.denied, token.created, token.rejected
  node?: string;
  source?: string;
  rule?: string;
  reason?: string;
  detail?: Record<string, unknown>;
}

export interface JoinCommit {
  tokenId: string;
  now: Date;
  node: string;
  /** Where the join came from: a serving SAN the node may hold from then on. */
  joinAddress?: string;
  /**
   * The token is bound to this node, so it may replace an existing node of that name (re-join,
   * lifting an eviction). Without it (the default) the commit refuses a name that exists by then.
   */
  mayReplace?: boolean;
  facts: NodeFacts;
  certificates: IssuedCertRecord[];
  audit: AuditEvent;
}

export interface RenewalCommit {
  now: Date;
  node: string;
  facts: NodeFacts;
  /** The client certificate the node authenticated with; it becomes the confirmed one. */
  confirmedSerial: string;
  certificates: IssuedCertRecord[];
  audit: AuditEvent;
}

/** What a join commit did; the route maps each code to an answer. */
export type JoinOutcome =
  | { code: "ok"; replaced?: NodeRecord }
  /** The token was spent or expired while the request ran. */
  | { code: "token-used" }
  /** Another join created the node first and this token may not replace it. */
  | { code: "existing-node"; node: NodeRecord };

/** What a renewal commit did. */
export type RenewalOutcome =
  | { code: "ok" }
  | { code: "unknown-node" }
  | { code: "evicted"; at: Date }
  /** The presented certificate is neither the newest issued nor the confirmed one (any more). */
  | { code: "lineage"; newest?: string; confirmed?: string };

export interface Store {
  insertToken(t: TokenRecord): Promise<void>;
  getToken(id: string): Promise<TokenRecord | undefined>;
  /**
   * In one transaction: checks that the node does not exist (unless `mayReplace`), spends one use
   * of the token (if still valid at `now`) and records the node, its join address, its
   * certificates, the token's bound SANs as the node's grants, and the audit event. Any other
   * outcome than "ok" records nothing, so exactly one of several concurrent joins for a new name
   * creates it.
   */
  commitJoin(c: JoinCommit): Promise<JoinOutcome>;
  recordCertificate(c: IssuedCertRecord): Promise<void>;
  getCertificate(serial: string): Promise<IssuedCertRecord | undefined>;
  listCertificates(node?: string): Promise<IssuedCertRecord[]>;
  /** Newest first, by the order they were recorded (never by a clock). */
  latestCertificates(node: string, kind: IssuedKind, limit: number): Promise<IssuedCertRecord[]>;
  /**
   * In one transaction: checks the lineage again (the presented serial must still be the node's
   * newest client certificate or its confirmed one, and the node known and not evicted), then
   * records the certificates, the facts and the presented serial as confirmed. Any other outcome
   * than "ok" records nothing, so two renewals racing with an old and a new certificate cannot
   * both win.
   */
  commitRenewal(c: RenewalCommit): Promise<RenewalOutcome>;
  /**
   * The node proved it holds `serial` (e.g. on the channel): if that is its newest client
   * certificate, it becomes the confirmed one, and every older certificate can no longer renew
   * or connect. Returns whether `serial` is now the confirmed serial.
   */
  confirmClientSerial(node: string, serial: string): Promise<boolean>;
  setEvicted(name: string, at: Date | undefined): Promise<void>;
  recordReport(name: string, report: NodeReport, at: Date): Promise<void>;
  createCampaign(c: CampaignRecord, nodes: string[]): Promise<void>;
  getCampaign(id: string): Promise<CampaignRecord | undefined>;
  listCampaigns(): Promise<CampaignRecord[]>;
  updateCampaign(id: string, patch: Partial<Pick<CampaignRecord, "state" | "finishedAt">>): Promise<void>;
  /** Ordered by node name; the query narrows it so a campaign step reads what it needs, not every node. */
  listCampaignNodes(id: string, q?: CampaignNodeQuery): Promise<CampaignNodeRecord[]>;
  getCampaignNode(id: string, node: string): Promise<CampaignNodeRecord | undefined>;
  countCampaignNodes(id: string): Promise<Record<CampaignNodeState, number>>;
  updateCampaignNode(id: string, node: string, patch: Partial<Omit<CampaignNodeRecord, "campaignId" | "node">>): Promise<void>;
  getKv<T>(key: string): Promise<T | undefined>;
  setKv(key: string, value: unknown): Promise<void>;
  getNode(name: string): Promise<NodeRecord | undefined>;
  listNodes(): Promise<NodeRecord[]>;
  audit(e: AuditEvent): Promise<void>;
  listAudit(limit?: number): Promise<AuditEvent[]>;
  listSanGrants(node: string): Promise<SanGrant[]>;
  /** Records grants (an existing grant of the same SAN is kept) with the audit event, atomically. */
  addSanGrants(node: string, grants: SanGrant[], audit: AuditEvent): Promise<void>;
  /** Removes grants of these SANs; returns how many there were. */
  removeSanGrants(node: string, sans: { kind: SanGrant["kind"]; value: string }[], audit: AuditEvent): Promise<number>;
  /**
   * Which nodes other than `except` (and not evicted) hold any of these SANs: by a serving
   * certificate still valid at `now`, an approval of exactly that SAN, or (DNS) as their name.
   */
  sanHolders(sans: { kind: "dns" | "ip"; value: string }[], except: string, now: Date): Promise<SanHolding[]>;
  /** SANs of the node's serving certificates still valid at `now`. */
  liveServingSans(node: string, now: Date): Promise<SanSet>;
  /**
   * Retention (server/retention.ts); optional so a store may lack it (retention then says so).
   * Deletes issuance records of certificates that expired before `before`, except each node's
   * newest of every kind and its confirmed one (the lineage needs them). Returns how many went.
   */
  pruneCertificates?(before: Date): Promise<number>;
  /** Audit events older than `before`, oldest first: what pruneAudit(before) would delete. */
  auditBefore?(before: Date): AsyncIterable<AuditEvent>;
  pruneAudit?(before: Date): Promise<number>;
  close(): Promise<void>;
}
