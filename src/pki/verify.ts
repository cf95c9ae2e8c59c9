// Verification before trust: chain, key match, identity, usage and validity. Pure.
import { X509Certificate, createPrivateKey } from "node:crypto";
import { splitCertificates } from "./pem.js";
import { certificateInfo, EKU_CLIENT_AUTH, EKU_SERVER_AUTH } from "./certificate-info.js";
import { NODE_ORG, nodeCommonName, sameSans, splitSans } from "./names.js";
import type { CertKind } from "./csr.js";

export class VerificationError extends Error {
  constructor(
    readonly what: string,
    readonly problems: string[],
  ) {
    super(`${what} failed verification: ${problems.join("; ")}`);
  }
}

const MAX_DEPTH = 8;

/**
 * Checks that the first certificate of `chainPem` chains to one of `anchorsPem` through the
 * other certificates given, every link signature-checked, every certificate valid at `now`.
 * Returns the problems found (empty when the chain is good).
 */
export function chainProblems(chainPem: string, anchorsPem: string, now: Date): string[] {
  const chain = splitCertificates(chainPem).map((p) => new X509Certificate(p));
  const anchors = splitCertificates(anchorsPem).map((p) => new X509Certificate(p));
  if (chain.length === 0) return ["no certificate found"];
  if (anchors.length === 0) return ["trust bundle holds no CA certificate"];
  const problems: string[] = [];
  const validAt = (c: X509Certificate, label: string) => {
    if (new Date(c.validFrom) > now) problems.push(`${label} is not valid until ${new Date(c.validFrom).toISOString()}`);
    if (new Date(c.validTo) <= now) problems.push(`${label} expired at ${new Date(c.validTo).toISOString()}`);
  };
  let cur = chain[0];
  validAt(cur, "certificate");
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    if (anchors.some((a) => a.fingerprint256 === cur.fingerprint256)) return problems;
    const anchor = anchors.find((a) => cur.checkIssued(a) && cur.verify(a.publicKey));
    if (anchor) {
      validAt(anchor, `CA "${anchor.subject.replace(/\n/g, ", ")}"`);
      return problems;
    }
    const next = chain.slice(1).find((c) => c.ca && cur.checkIssued(c) && cur.verify(c.publicKey));
    if (!next) {
      problems.push(`does not chain to the trusted CA (issuer "${cur.issuer.replace(/\n/g, ", ")}" not found or signature invalid)`);
      return problems;
    }
    validAt(next, `intermediate "${next.subject.replace(/\n/g, ", ")}"`);
    cur = next;
  }
  problems.push(`chain longer than ${MAX_DEPTH}`);
  return problems;
}

export function keyMatchesCertificate(certPem: string, keyPem: string): boolean {
  try {
    return new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

export interface NodeCertExpectation {
  kind: CertKind;
  nodeName: string;
  /** Serving only: the SANs requested. */
  sans?: string[];
  now: Date;
}

/** Everything an agent checks before installing a certificate it was given. */
export function verifyNodeCertificate(chainPem: string, keyPem: string, anchorsPem: string, exp: NodeCertExpectation): void {
  const what = `kubelet ${exp.kind} certificate`;
  const leafPem = splitCertificates(chainPem)[0];
  if (!leafPem) throw new VerificationError(what, ["response holds no certificate"]);
  const problems = chainProblems(chainPem, anchorsPem, exp.now);
  if (!keyMatchesCertificate(leafPem, keyPem)) problems.push("certificate is not for this node's private key");
  const info = certificateInfo(leafPem);
  if (info.subjectCN !== nodeCommonName(exp.nodeName)) {
    problems.push(`subject CN is "${info.subjectCN}", expected "${nodeCommonName(exp.nodeName)}"`);
  }
  if (info.subjectO.length !== 1 || info.subjectO[0] !== NODE_ORG) {
    problems.push(`subject O is [${info.subjectO.join(", ")}], expected [${NODE_ORG}]`);
  }
  if (info.isCA) problems.push("certificate is a CA certificate");
  const wantEku = exp.kind === "client" ? EKU_CLIENT_AUTH : EKU_SERVER_AUTH;
  if (!info.extendedKeyUsages.includes(wantEku)) {
    problems.push(`extended key usage lacks ${exp.kind === "client" ? "clientAuth" : "serverAuth"}`);
  }
  const want = exp.kind === "client" ? { dns: [], ip: [] } : splitSans(exp.sans ?? []);
  if (!sameSans(info.sans, want)) {
    problems.push(
      `SANs are DNS[${info.sans.dns.join(",")}] IP[${info.sans.ip.join(",")}], requested DNS[${want.dns.join(",")}] IP[${want.ip.join(",")}]`,
    );
  }
  if (problems.length) throw new VerificationError(what, problems);
}
