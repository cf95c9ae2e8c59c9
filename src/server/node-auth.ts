// Node authentication, one function for every way a node reaches the server (POST /v1/renew and
// the fleet channel): the client certificate chains to the CA on the server's clock, names a node
// (CN system:node:<name>, exactly one O system:nodes, clientAuth EKU), and then the node's
// standing in the store (known, not evicted, the certificate still in its lineage).
// Outcomes are codes; each caller renders its own answer.
import { NODE_CN_PREFIX, NODE_ORG } from "../pki/names.js";
import { EKU_CLIENT_AUTH, type CertificateInfo } from "../pki/certificate-info.js";
import { checkPeer, isTlsSocket, type PeerIdentity } from "./peer.js";
import { mayActForNode } from "./lineage.js";
import type { Authority } from "./ca/authority.js";
import type { NodeRecord, Store } from "./store/store.js";

export type NodeAuth =
  | { ok: true; node: string; serial: string; peer: PeerIdentity; info: CertificateInfo; /** Past notAfter but inside the grace the caller allowed. */ expired: boolean }
  | { ok: false; code: "client-cert-required"; reason: string }
  | { ok: false; code: "not-a-node"; reason: string; cn: string }
  | { ok: false; code: "certificate-expired"; reason: string; node: string; notAfter: Date };

export interface NodeAuthOptions {
  /** How long after notAfter an expired certificate is still accepted; 0 or less: never. */
  expiredGraceMs: number;
}

/** The subject and usage a node's client certificate must have (also the agent's own check). */
export function isNodeClientCertificate(info: CertificateInfo): boolean {
  const cn = info.subjectCN ?? "";
  return cn.startsWith(NODE_CN_PREFIX) && cn.length > NODE_CN_PREFIX.length && info.subjectO.length === 1 && info.subjectO[0] === NODE_ORG && info.extendedKeyUsages.includes(EKU_CLIENT_AUTH);
}

export function authenticateNode(socket: unknown, authority: Authority, now: Date, o: NodeAuthOptions): NodeAuth {
  if (!isTlsSocket(socket)) return { ok: false, code: "client-cert-required", reason: "no client certificate was presented (mTLS)" };
  const pc = checkPeer(socket, authority.trustBundle, now, authority.intermediates);
  if (!pc.ok) return { ok: false, code: "client-cert-required", reason: pc.reason };
  const info = pc.peer.info;
  const cn = info.subjectCN ?? "";
  if (!isNodeClientCertificate(info)) {
    return { ok: false, code: "not-a-node", cn, reason: `client certificate "${cn}" is not a kubelet client certificate (CN system:node:<name>, O system:nodes, clientAuth)` };
  }
  const node = cn.slice(NODE_CN_PREFIX.length);
  if (pc.expired) {
    const late = now.getTime() - info.notAfter.getTime();
    if (o.expiredGraceMs <= 0 || late > o.expiredGraceMs) return { ok: false, code: "certificate-expired", node, notAfter: info.notAfter, reason: `client certificate expired at ${info.notAfter.toISOString()}` };
  }
  return { ok: true, node, serial: info.serial, peer: pc.peer, info, expired: pc.expired };
}

export type NodeStanding =
  | { ok: true; record: NodeRecord; newest: string | undefined }
  | { ok: false; code: "known-node" }
  | { ok: false; code: "evicted"; at: Date }
  | { ok: false; code: "lineage"; newest: string | undefined; confirmed: string | undefined };

/** Whether the node may act with certificate `serial` right now (checked again where it commits). */
export async function nodeStanding(store: Store, node: string, serial: string): Promise<NodeStanding> {
  const record = await store.getNode(node);
  if (!record) return { ok: false, code: "known-node" };
  if (record.evictedAt) return { ok: false, code: "evicted", at: record.evictedAt };
  const newest = (await store.latestCertificates(node, "client", 1))[0]?.serial;
  if (!mayActForNode(serial, { newest, confirmed: record.confirmedSerial })) return { ok: false, code: "lineage", newest, confirmed: record.confirmedSerial };
  return { ok: true, record, newest };
}
