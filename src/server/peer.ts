// Authenticates the TLS client certificate of a request against the CA, on the server's clock.
// Node's own `authorized` flag uses the wall clock, which tests cannot move; this one can.
import type { TLSSocket } from "node:tls";
import { peerChain } from "../platform/peer-chain.js";
import { X509Certificate } from "node:crypto";
import { chainProblems } from "../pki/verify.js";
import { certificateInfo, type CertificateInfo } from "../pki/certificate-info.js";

export interface PeerIdentity {
  /** Leaf first. */
  chainPem: string;
  info: CertificateInfo;
}

export type PeerCheck = { ok: true; peer: PeerIdentity; expired: boolean } | { ok: false; reason: string };

/**
 * Verifies the peer's chain against `anchorsPem` at `now`. An expired leaf is reported as
 * `expired` (the chain itself verified as of just before expiry) so callers can apply a grace
 * policy; the TLS handshake already proved possession of the key.
 */
export function checkPeer(socket: TLSSocket, anchorsPem: string, now: Date, intermediatesPem = ""): PeerCheck {
  const sent = peerChain(socket);
  // Intermediates the client left out are supplied by the server; the leaf stays first.
  const chainPem = sent ? sent + intermediatesPem : undefined;
  if (!chainPem) return { ok: false, reason: "no client certificate was presented" };
  const info = certificateInfo(chainPem);
  const problems = chainProblems(chainPem, anchorsPem, now);
  if (!problems.length) return { ok: true, peer: { chainPem, info }, expired: false };
  if (info.notAfter <= now) {
    const atExpiry = new Date(info.notAfter.getTime() - 1000);
    if (!chainProblems(chainPem, anchorsPem, atExpiry).length) return { ok: true, peer: { chainPem, info }, expired: true };
  }
  return { ok: false, reason: `client certificate rejected: ${problems.join("; ")}` };
}

export function isTlsSocket(s: unknown): s is TLSSocket {
  return !!s && typeof (s as TLSSocket).getPeerCertificate === "function";
}

export { X509Certificate };
