// Whether one of the server's own certificates (TLS serving, admin client) must be re-issued.
// Pure: the caller reads the files and the certificate record and acts on the answer.
import { X509Certificate } from "node:crypto";
import { splitCertificates } from "../../pki/pem.js";
import { certificateInfo, EKU_CLIENT_AUTH, EKU_NODECERT_CONTROL_PLANE, EKU_SERVER_AUTH } from "../../pki/certificate-info.js";
import { sameSans, splitSans } from "../../pki/names.js";
import { keyMatchesCertificate } from "../../pki/verify.js";

/**
 * Re-issue once two thirds of the lifetime have passed: for the 1-year certificates that is
 * ~4 months before expiry. The server checks hourly, so the margin is not needed for timing; it
 * is room for a server that was down for weeks, or whose re-issues fail (each failure is logged
 * every hour), to be noticed and fixed long before agents start failing TLS. A fraction rather
 * than a fixed "30 days before" keeps working for any lifetime (a fixed window wider than a
 * short lifetime would re-issue at every check). The same rule as cert-manager's default.
 */
export const RENEW_AFTER_FRACTION = 2 / 3;

export interface ServiceCertFacts {
  /** Contents of the certificate file (leaf first); undefined when the file is missing. */
  certPem: string | undefined;
  /** Contents of the key file; undefined when missing. Only compared, never reported. */
  keyPem: string | undefined;
  /** The CA certificate that signs now. */
  signerCertPem: string;
  /** The SANs the certificate must carry (server certificate: server.yaml `sans`). */
  sans?: string[];
  /** Extended key usages the certificate must carry (the server's control-plane identity). */
  extendedKeyUsages?: string[];
  /** Whether the certificate's serial is in the record with this kind; undefined: not looked up. */
  recorded?: boolean;
  now: Date;
}

export type ServiceCertDecision =
  | { action: "keep"; serial: string; notAfter: Date; renewAt: Date; warning?: string }
  | { action: "reissue"; reason: string };

/** Serial of the leaf in `certPem` (as the store keys it), or undefined if it cannot be read. */
export function leafSerial(certPem: string | undefined): string | undefined {
  try {
    const leaf = certPem && splitCertificates(certPem)[0];
    return leaf ? certificateInfo(leaf).serial : undefined;
  } catch {
    return undefined;
  }
}

export function renewAt(notBefore: Date, notAfter: Date): Date {
  return new Date(notBefore.getTime() + (notAfter.getTime() - notBefore.getTime()) * RENEW_AFTER_FRACTION);
}

export function decideServiceCert(f: ServiceCertFacts): ServiceCertDecision {
  if (f.certPem === undefined) return { action: "reissue", reason: "the certificate file is missing" };
  if (f.keyPem === undefined) return { action: "reissue", reason: "the key file is missing" };
  let leafPem: string;
  let leaf: X509Certificate;
  let info: ReturnType<typeof certificateInfo>;
  try {
    leafPem = splitCertificates(f.certPem)[0];
    if (!leafPem) return { action: "reissue", reason: "the certificate file holds no certificate" };
    leaf = new X509Certificate(leafPem);
    info = certificateInfo(leafPem);
  } catch (e) {
    return { action: "reissue", reason: `the certificate file cannot be read: ${(e as Error).message}` };
  }
  const signer = new X509Certificate(f.signerCertPem);
  const signerNotAfter = new Date(signer.validTo);
  if (signerNotAfter <= f.now) {
    // Anything it signs would be expired at once: re-issuing cannot help, and would repeat hourly.
    return keep(info, `the CA expired at ${signerNotAfter.toISOString()}; nothing it signs is valid: rotate the CA ('nodecert ca rotate')`);
  }
  const problems: string[] = [];
  if (!keyMatchesCertificate(leafPem, f.keyPem)) problems.push("the key file does not belong to the certificate");
  if (!(leaf.checkIssued(signer) && leaf.verify(signer.publicKey))) {
    problems.push(`it is not signed by the current CA: its issuer is "${info.issuer}", the CA that signs now is "${certificateInfo(f.signerCertPem).subject}"`);
  }
  if (info.notBefore > f.now) problems.push(`it is not valid until ${info.notBefore.toISOString()} (did the clock go back?)`);
  if (info.notAfter <= f.now) problems.push(`it expired at ${info.notAfter.toISOString()}`);
  if (f.sans) {
    const want = splitSans(f.sans);
    if (!sameSans(info.sans, want)) {
      problems.push(`its SANs are DNS[${info.sans.dns.join(",")}] IP[${info.sans.ip.join(",")}], server.yaml sans ask for DNS[${want.dns.join(",")}] IP[${want.ip.join(",")}]`);
    }
  }
  const missingEku = (f.extendedKeyUsages ?? []).filter((u) => !info.extendedKeyUsages.includes(u));
  if (missingEku.length) {
    problems.push(`it lacks the extended key usage${missingEku.length > 1 ? "s" : ""} ${missingEku.map(ekuName).join(", ")} (agents and 'nodecert join' refuse a control plane without it)`);
  }
  if (f.recorded === false) problems.push(`its serial ${info.serial} is not in the server's certificate record (the admin check refuses such a certificate)`);
  if (problems.length) return { action: "reissue", reason: problems.join("; ") };
  const due = renewAt(info.notBefore, info.notAfter);
  if (f.now < due) return keep(info);
  // A leaf never outlives its CA: when this one already reaches the CA's end, a new one would not
  // last longer, so re-issuing would only repeat at every check.
  if (info.notAfter >= signerNotAfter) {
    return keep(info, `it expires at ${info.notAfter.toISOString()} with the CA that signs it, and cannot be renewed past that: rotate the CA ('nodecert ca rotate')`);
  }
  return { action: "reissue", reason: `two thirds of its lifetime have passed (renew after ${due.toISOString()}, expires ${info.notAfter.toISOString()})` };
}

function ekuName(oid: string): string {
  if (oid === EKU_NODECERT_CONTROL_PLANE) return `nodecert control-plane (${oid})`;
  if (oid === EKU_SERVER_AUTH) return "serverAuth";
  if (oid === EKU_CLIENT_AUTH) return "clientAuth";
  return oid;
}

function keep(info: ReturnType<typeof certificateInfo>, warning?: string): ServiceCertDecision {
  return { action: "keep", serial: info.serial, notAfter: info.notAfter, renewAt: renewAt(info.notBefore, info.notAfter), ...(warning ? { warning } : {}) };
}
