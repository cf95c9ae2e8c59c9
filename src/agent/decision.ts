// For one managed certificate, decide ok / renew / urgent, with a reason. Pure.
import type { CertKind } from "../pki/csr.js";
import type { KeyAlgorithm } from "../pki/key-algorithms.js";
import { certificateInfo, EKU_CLIENT_AUTH, EKU_SERVER_AUTH } from "../pki/certificate-info.js";
import { privateKeyBlock, splitCertificates } from "../pki/pem.js";
import { chainProblems, keyMatchesCertificate } from "../pki/verify.js";
import { NODE_ORG, nodeCommonName, splitSans } from "../pki/names.js";

export type Action = "ok" | "renew" | "urgent";

/** Why: code decides on these, people read the reason. */
export type DecisionCode =
  | "missing"
  /** The file exists but cannot be read (EACCES, EIO...): reported, never a reason to re-join. */
  | "unreadable"
  /** The file was read but holds no parsable certificate. */
  | "corrupt"
  | "expired"
  | "key-mismatch"
  /** The pair is not of its kind (kubelet-client-current.pem pointing at the serving pair). */
  | "wrong-eku"
  | "subject"
  | "sans-missing"
  | "no-trust-bundle"
  | "untrusted"
  | "key-algorithm"
  | "due"
  | "sans-stale"
  | "ok";

/** The client certificate is gone for good: only a bootstrap token (re-join) can bring the node back. */
export const CLIENT_UNUSABLE: readonly DecisionCode[] = ["missing", "corrupt", "expired", "key-mismatch", "wrong-eku"];

const EKU_OF: Record<CertKind, { oid: string; name: string }> = { client: { oid: EKU_CLIENT_AUTH, name: "clientAuth" }, serving: { oid: EKU_SERVER_AUTH, name: "serverAuth" } };

export interface Decision {
  kind: CertKind;
  action: Action;
  code: DecisionCode;
  reason: string;
  serial?: string;
  notBefore?: Date;
  notAfter?: Date;
  renewAt?: Date;
  /** Set by the renewer when the certificate lives too short for the renewal schedule. */
  warning?: string;
}

export interface DecisionInput {
  kind: CertKind;
  /** Contents of <kind>-current.pem (chain + key), or undefined if missing. */
  pem: string | undefined;
  /** Set when the file exists but could not be read (then `pem` is undefined). */
  readError?: string;
  now: Date;
  /** The deadline for this certificate (drawn or from renewBefore). */
  renewAt: (notBefore: Date, notAfter: Date, serial: string) => Date;
  nodeName: string;
  /** Serving only: names and addresses the node has now. */
  servingSans: string[];
  keyAlgorithm: KeyAlgorithm;
  trustBundlePem: string | undefined;
}

export function decide(i: DecisionInput): Decision {
  const base = { kind: i.kind };
  if (i.readError) return { ...base, action: "urgent", code: "unreadable", reason: `certificate cannot be read: ${i.readError}` };
  if (!i.pem) return { ...base, action: "urgent", code: "missing", reason: "certificate is missing" };
  let info;
  try {
    info = certificateInfo(splitCertificates(i.pem)[0]);
  } catch (e) {
    return { ...base, action: "urgent", code: "corrupt", reason: `certificate is unreadable: ${(e as Error).message}` };
  }
  const facts = { ...base, serial: info.serial, notBefore: info.notBefore, notAfter: info.notAfter };
  if (info.notAfter <= i.now) return { ...facts, action: "urgent", code: "expired", reason: `certificate expired at ${info.notAfter.toISOString()}` };
  const key = privateKeyBlock(i.pem);
  if (!key || !keyMatchesCertificate(i.pem, key)) return { ...facts, action: "urgent", code: "key-mismatch", reason: "private key does not match the certificate" };
  if (!info.extendedKeyUsages.includes(EKU_OF[i.kind].oid)) {
    return { ...facts, action: "urgent", code: "wrong-eku", reason: `the ${i.kind} certificate lacks the ${EKU_OF[i.kind].name} extended key usage: ${i.kind === "client" ? "kubelet-client" : "kubelet-server"}-current.pem points at a pair of another kind` };
  }
  const cn = nodeCommonName(i.nodeName);
  if (info.subjectCN !== cn || info.subjectO.length !== 1 || info.subjectO[0] !== NODE_ORG) {
    return { ...facts, action: "urgent", code: "subject", reason: `subject changed: certificate is for "${info.subject}", the node is "${cn}"` };
  }
  if (i.kind === "serving") {
    const want = splitSans(i.servingSans);
    const missing = [...want.dns.filter((d) => !info.sans.dns.includes(d)), ...want.ip.filter((a) => !info.sans.ip.includes(a))];
    if (missing.length) return { ...facts, action: "urgent", code: "sans-missing", reason: `serving SANs no longer cover the node's names and addresses: missing ${missing.join(", ")}` };
  }
  if (!i.trustBundlePem) return { ...facts, action: "urgent", code: "no-trust-bundle", reason: "no trust bundle (ca.crt) is installed" };
  const chain = chainProblems(i.pem, i.trustBundlePem, i.now);
  if (chain.length) return { ...facts, action: "urgent", code: "untrusted", reason: `issuer is not in the current trust bundle: ${chain.join("; ")}` };
  if (info.keyAlgorithm !== i.keyAlgorithm) {
    return { ...facts, action: "urgent", code: "key-algorithm", reason: `key is ${info.keyDescription}, the configured key algorithm is ${i.keyAlgorithm}` };
  }
  const renewAt = i.renewAt(info.notBefore, info.notAfter, info.serial);
  if (i.now >= renewAt) return { ...facts, renewAt, action: "renew", code: "due", reason: `renewal deadline ${renewAt.toISOString()} reached` };
  if (i.kind === "serving") {
    const want = splitSans(i.servingSans);
    const stale = [...info.sans.dns.filter((d) => !want.dns.includes(d)), ...info.sans.ip.filter((a) => !want.ip.includes(a))];
    if (stale.length) return { ...facts, renewAt, action: "renew", code: "sans-stale", reason: `serving certificate lists names or addresses the node no longer has: ${stale.join(", ")}` };
  }
  return { ...facts, renewAt, action: "ok", code: "ok", reason: `valid until ${info.notAfter.toISOString()}; renews at ${renewAt.toISOString()}` };
}
