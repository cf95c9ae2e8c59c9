// A join is provisional until the node proves it installed the result: its first renewal or its
// channel connection makes its client certificate the confirmed one (NodeRecord.confirmedSerial).
// Until then, for a bounded window, the same token may join the same node again with the same key,
// so a node that could not install what it got (a wrong clock, a full disk, a lost response) is
// not stranded behind a spent token or its own half-made node record. Kept in the store's kv, so
// SQLite and etcd hold it alike without a schema change.
import { createHash } from "node:crypto";
import type { IssuedCertRecord, Store } from "./store/store.js";

/** How long after a join the same node may retry it with the same token and key. */
export const JOIN_RETRY_WINDOW_MS = 60 * 60_000;

export interface ProvisionalJoin {
  tokenId: string;
  node: string;
  /** SHA-256 of the client key's SubjectPublicKeyInfo: the retry must come from the same key. */
  clientKey: string;
  clientSerial: string;
  joinedAt: string;
  until: string;
  retries: number;
}

const kvKey = (tokenId: string) => `join.provisional.${tokenId}`;
const keyHash = (spki: Uint8Array | ArrayBuffer) => createHash("sha256").update(Buffer.from(spki as ArrayBuffer)).digest("hex");

export class JoinConfirmations {
  constructor(
    private readonly store: Store,
    private readonly windowMs = JOIN_RETRY_WINDOW_MS,
  ) {}

  /** After a committed join: the node has the window to install and prove it. */
  async record(tokenId: string, node: string, clientSpki: Uint8Array | ArrayBuffer, clientSerial: string, now: Date): Promise<void> {
    const p: ProvisionalJoin = { tokenId, node, clientKey: keyHash(clientSpki), clientSerial, joinedAt: now.toISOString(), until: new Date(now.getTime() + this.windowMs).toISOString(), retries: 0 };
    await this.store.setKv(kvKey(tokenId), p);
  }

  /** A spent or expired token with a provisional join still inside its window. */
  async pending(tokenId: string, now: Date): Promise<ProvisionalJoin | undefined> {
    const p = await this.store.getKv<ProvisionalJoin | null>(kvKey(tokenId));
    return p && Date.parse(p.until) > now.getTime() ? p : undefined;
  }

  /** Why this retry may not go ahead (undefined: it may). */
  async refusal(p: ProvisionalJoin, node: string, clientSpki: Uint8Array | ArrayBuffer): Promise<string | undefined> {
    const spent = `bootstrap token ${p.tokenId} has already been used (by the join of node "${p.node}" at ${p.joinedAt})`;
    if (node !== p.node) return `${spent}; only that node may retry it: create a new token`;
    if (keyHash(clientSpki) !== p.clientKey) return `${spent}; a retry must send the same client key as that join did (the agent keeps it until the join is installed): create a new token`;
    const rec = await this.store.getNode(node);
    if (!rec || rec.evictedAt) return `${spent}; the node is no longer registered as that join left it: create a new token`;
    if (rec.confirmedSerial) return `${spent}, and the node has since proved it installed its certificates (the join is final): create a new token to join it again`;
    const newest = (await this.store.latestCertificates(node, "client", 1))[0];
    if (newest?.serial !== p.clientSerial) return `${spent}; the node has other certificates since: create a new token`;
    return undefined;
  }

  /** Records a retry's certificates (the token is not spent again) and keeps the window as it was. */
  async commitRetry(p: ProvisionalJoin, certificates: IssuedCertRecord[], now: Date, source: string): Promise<void> {
    for (const c of certificates) await this.store.recordCertificate(c);
    const client = certificates.find((c) => c.kind === "client")!;
    await this.store.setKv(kvKey(p.tokenId), { ...p, clientSerial: client.serial, retries: p.retries + 1 });
    await this.store.audit({ time: now, type: "join.retried", node: p.node, source, detail: { tokenId: p.tokenId, client: client.serial, serving: certificates.find((c) => c.kind === "serving")?.serial, retry: p.retries + 1 } });
  }
}
