// The certificate chain a TLS peer presented, as PEM (leaf first).
import type { TLSSocket, PeerCertificate, DetailedPeerCertificate } from "node:tls";
import { encodePem } from "../pki/pem.js";

/** The chain the peer sent (leaf first), or undefined when it sent no certificate. */
export function peerChain(socket: TLSSocket): string | undefined {
  const leaf = socket.getPeerCertificate?.(true) as DetailedPeerCertificate | undefined;
  if (!leaf || !leaf.raw) return undefined;
  const pems: string[] = [];
  const seen = new Set<string>();
  let cur: PeerCertificate | DetailedPeerCertificate | undefined = leaf;
  while (cur && cur.raw && !seen.has(cur.fingerprint256)) {
    seen.add(cur.fingerprint256);
    pems.push(encodePem("CERTIFICATE", cur.raw));
    cur = (cur as DetailedPeerCertificate).issuerCertificate;
  }
  return pems.join("");
}

