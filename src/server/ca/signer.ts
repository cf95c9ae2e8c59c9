// Signs approved requests with the cluster CA. The subject always comes from the approved identity.
import { issueLeaf, type LeafKind, type RandomBytes } from "../../pki/certificate.js";
import { certificateInfo } from "../../pki/certificate-info.js";
import type { x509 } from "../../crypto/provider.js";
import type { LoadedCa } from "./ca.js";
import type { IssuedCertRecord } from "../store/store.js";
import type { SanSet } from "../../pki/names.js";

export interface SignRequest {
  owner: string; // node name or service identity, for the record
  subject: x509.JsonName;
  spki: ArrayBuffer;
  kind: LeafKind;
  /** DNS and IP SANs, apart as approved (a DNS SAN is never retyped as an IP). */
  sans?: SanSet;
  lifetimeMs: number;
}

export interface Signed {
  /** Leaf first, then intermediates. */
  chainPem: string;
  record: IssuedCertRecord;
}

export async function sign(ca: LoadedCa, req: SignRequest, now: Date, random: RandomBytes): Promise<Signed> {
  const leaf = await issueLeaf({
    issuer: ca.issuer,
    subject: req.subject,
    spki: req.spki,
    kind: req.kind,
    sans: req.sans,
    now,
    lifetimeMs: req.lifetimeMs,
    random,
  });
  return {
    chainPem: leaf.pem + ca.intermediatesPem,
    record: {
      serial: leaf.serial,
      node: req.owner,
      kind: req.kind,
      notBefore: leaf.notBefore,
      notAfter: leaf.notAfter,
      fingerprint256: certificateInfo(leaf.pem).fingerprint256,
      issuedAt: now,
      issuerFingerprint: certificateInfo(ca.issuer.certPem).fingerprint256,
      // Recorded for node serving certificates, so no other node gets the same name or address.
      ...(req.kind === "serving" && req.sans ? { sans: { dns: [...req.sans.dns], ip: [...req.sans.ip] } } : {}),
    },
  };
}
