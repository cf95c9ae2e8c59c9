// Authenticates the TLS client certificate of a request against the CA, on the server's clock.
// Node's own `authorized` flag uses the wall clock, which tests cannot move; this one can.
import type { TLSSocket } from "node:tls";
import { peerChain } from "../platform/peer-chain.js";
import { X509Certificate } from "node:crypto";
import { chainProblems } from "../pki/verify.js";
import { certificateInfo, type CertificateInfo } from "../pki/certificate-info.js";
import { splitCertificates } from "../pki/pem.js";

export interface PeerIdentity {
  /** Leaf first. */
  chainPem: string;
  info: CertificateInfo;
}

export type PeerCheck = { ok: true; peer: PeerIdentity; expired: boolean } | { ok: false; reason: string };

/**
 * A verified chain, kept on its TLS connection: a keep-alive connection's client certificate cannot
 * change after the handshake (TLS 1.3 only, no renegotiation), so its chain is verified once and
 * reused while the trust it was verified against is the same and `now` lies inside the validity of
 * every certificate involved. Anything else (another bundle, a time outside that window) verifies
 * again, so the cache can only save work, never widen what is accepted.
 */
interface Verified {
  anchorsPem: string;
  intermediatesPem: string;
  peer: PeerIdentity;
  validFrom: number;
  validTo: number;
}
const verifiedOn = new WeakMap<TLSSocket, Verified>();

/** How many chains were verified in full (tests prove the per-connection cache with it). */
export const peerVerifications = { count: 0 };

/**
 * Verifies the peer's chain against `anchorsPem` at `now`. An expired leaf is reported as
 * `expired` (the chain itself verified as of just before expiry) so callers can apply a grace
 * policy; the TLS handshake already proved possession of the key.
 */
export function checkPeer(socket: TLSSocket, anchorsPem: string, now: Date, intermediatesPem = ""): PeerCheck {
  const cached = verifiedOn.get(socket);
  const t = now.getTime();
  if (cached && cached.anchorsPem === anchorsPem && cached.intermediatesPem === intermediatesPem && t >= cached.validFrom && t < cached.validTo) {
    return { ok: true, peer: cached.peer, expired: false };
  }
  const sent = peerChain(socket);
  // Intermediates the client left out are supplied by the server; the leaf stays first.
  const chainPem = sent ? sent + intermediatesPem : undefined;
  if (!chainPem) return { ok: false, reason: "no client certificate was presented" };
  peerVerifications.count++;
  const info = certificateInfo(chainPem);
  const problems = chainProblems(chainPem, anchorsPem, now);
  if (!problems.length) {
    const peer = { chainPem, info };
    const window = validityWindow(chainPem + anchorsPem);
    if (typeof socket.getPeerCertificate === "function") verifiedOn.set(socket, { anchorsPem, intermediatesPem, peer, ...window });
    return { ok: true, peer, expired: false };
  }
  if (info.notAfter <= now) {
    const atExpiry = new Date(info.notAfter.getTime() - 1000);
    if (!chainProblems(chainPem, anchorsPem, atExpiry).length) return { ok: true, peer: { chainPem, info }, expired: true };
  }
  return { ok: false, reason: `client certificate rejected: ${problems.join("; ")}` };
}

/** The span in which every one of these certificates is valid (conservative: all of them, not only the path). */
function validityWindow(pems: string): { validFrom: number; validTo: number } {
  let validFrom = -Infinity;
  let validTo = Infinity;
  for (const p of splitCertificates(pems)) {
    const c = new X509Certificate(p);
    validFrom = Math.max(validFrom, new Date(c.validFrom).getTime());
    validTo = Math.min(validTo, new Date(c.validTo).getTime());
  }
  return { validFrom, validTo };
}

export function isTlsSocket(s: unknown): s is TLSSocket {
  return !!s && typeof (s as TLSSocket).getPeerCertificate === "function";
}

export { X509Certificate };
