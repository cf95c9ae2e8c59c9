// The server's state behind a small async interface, so SQLite and etcd (HA) can both back it.
import type { TokenRecord } from "../tokens.js";
import type { NodeFacts } from "../../protocol/messages.js";

export type IssuedKind = "client" | "serving" | "server" | "admin";

export interface IssuedCertRecord {
  serial: string;
  node: string; // node name, or "nodecert:admin" / "nodecert:server"
  kind: IssuedKind;
  notBefore: Date;
  notAfter: Date;
  fingerprint256: string;
  issuedAt: Date;
}

export interface NodeRecord {
  name: string;
  facts: NodeFacts;
  firstSeen: Date;
  lastSeen: Date;
  /** The last client certificate the node proved it holds (authenticated with). */
  confirmedSerial?: string;
  evictedAt?: Date;
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
  facts: NodeFacts;
  certificates: IssuedCertRecord[];
  audit: AuditEvent;
}

export interface RenewalCommit {
  now: Date;
  node: string;
  facts: NodeFacts;
  confirmedSerial: string;
  certificates: IssuedCertRecord[];
  audit: AuditEvent;
}

export interface Store {
  insertToken(t: TokenRecord): Promise<void>;
  getToken(id: string): Promise<TokenRecord | undefined>;
  /**
   * Atomically spends one use of the token (if still valid at `now`) and records the node,
   * its certificates and the audit event. Returns false, recording nothing, if the token
   * was spent or expired meanwhile.
   */
  commitJoin(c: JoinCommit): Promise<boolean>;
  recordCertificate(c: IssuedCertRecord): Promise<void>;
  getCertificate(serial: string): Promise<IssuedCertRecord | undefined>;
  listCertificates(node?: string): Promise<IssuedCertRecord[]>;
  /** Newest first. */
  latestCertificates(node: string, kind: IssuedKind, limit: number): Promise<IssuedCertRecord[]>;
  /** Records a renewal's certificates, the node's facts and the serial it authenticated with, atomically. */
  commitRenewal(c: RenewalCommit): Promise<void>;
  setEvicted(name: string, at: Date | undefined): Promise<void>;
  getNode(name: string): Promise<NodeRecord | undefined>;
  listNodes(): Promise<NodeRecord[]>;
  audit(e: AuditEvent): Promise<void>;
  listAudit(limit?: number): Promise<AuditEvent[]>;
  close(): Promise<void>;
}
