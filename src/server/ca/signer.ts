// Signs approved requests with the cluster CA. The subject always comes from the approved identity.
// The hot path (pki/leaf-der.ts) builds the leaf as DER and signs it with node:crypto, from a
// signing context parsed once per loaded CA (a CA rotation loads a new one); what the record needs
// (serial, validity, fingerprint) comes from building it, not from parsing it back. A subject the
// fast writer does not handle goes through @peculiar/x509 (issueLeaf), which writes the same bytes.
import { issueLeaf, type LeafKind, type RandomBytes } from "../../pki/certificate.js";
import { certificateInfo } from "../../pki/certificate-info.js";
import { issueLeafDer, signingContext, type SigningContext } from "../../pki/leaf-der.js";
import type { x509 } from "../../crypto/provider.js";
import type { LoadedCa } from "./ca.js";
import type { IssuedCertRecord } from "../store/store.js";
import type { SanSet } from "../../pki/names.js";
import type { KeyAlgorithm } from "../../pki/key-algorithms.js";

export interface SignRequest {
  owner: string; // node name or service identity, for the record
  subject: x509.JsonName;
  spki: ArrayBuffer;
  kind: LeafKind;
  /** DNS and IP SANs, apart as approved (a DNS SAN is never retyped as an IP). */
  sans?: SanSet;
  lifetimeMs: number;
  /** The subject key's algorithm, when known (the approved CSR's): saves loading the key again. */
  keyAlgorithm?: KeyAlgorithm;
}

export interface Signed {
  /** Leaf first, then intermediates. */
  chainPem: string;
  record: IssuedCertRecord;
}

/** One signing context per loaded CA object: parsed on first use, dropped with the CA. */
const contexts = new WeakMap<LoadedCa, SigningContext>();
export function signingContextOf(ca: LoadedCa): SigningContext {
  let c = contexts.get(ca);
  if (!c) {
    c = signingContext(ca.issuer);
    contexts.set(ca, c);
  }
  return c;
}

/** How many leaves went through the library path instead of the DER writer (tests). */
export const signerFallbacks = { count: 0 };

export async function sign(ca: LoadedCa, req: SignRequest, now: Date, random: RandomBytes): Promise<Signed> {
  const ctx = signingContextOf(ca);
  const sans = req.kind === "serving" && req.sans ? { sans: { dns: [...req.sans.dns], ip: [...req.sans.ip] } } : {};
  const fast = await issueLeafDer({ ctx, subject: req.subject as Record<string, string[]>[], spki: req.spki, kind: req.kind, sans: req.sans, now, lifetimeMs: req.lifetimeMs, random, subjectKeyAlgorithm: req.keyAlgorithm });
  if (fast) {
    return {
      chainPem: fast.pem + ca.intermediatesPem,
      record: { serial: fast.serial, node: req.owner, kind: req.kind, notBefore: fast.notBefore, notAfter: fast.notAfter, fingerprint256: fast.fingerprint256, issuedAt: now, issuerFingerprint: ctx.fingerprint256, ...sans },
    };
  }
  signerFallbacks.count++;
  const leaf = await issueLeaf({ issuer: ca.issuer, subject: req.subject, spki: req.spki, kind: req.kind, sans: req.sans, now, lifetimeMs: req.lifetimeMs, random });
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
      issuerFingerprint: ctx.fingerprint256,
      // Recorded for node serving certificates, so no other node gets the same name or address.
      ...sans,
    },
  };
}
