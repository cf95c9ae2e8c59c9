// Reads the facts nodecert cares about out of a certificate. Pure.
import { X509Certificate as NodeX509 } from "node:crypto";
import { x509 } from "../crypto/provider.js";
import { describeKeyObject, type KeyAlgorithm } from "./keys.js";
import { spkiPin } from "./pin.js";
import { normalizeIp, type SanSet } from "./names.js";

export const EKU_SERVER_AUTH = "1.3.6.1.5.5.7.3.1";
export const EKU_CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";

export interface CertificateInfo {
  subjectCN: string | undefined;
  subjectO: string[];
  subject: string;
  issuerCN: string | undefined;
  issuer: string;
  serial: string; // lowercase hex, no leading zero octet
  notBefore: Date;
  notAfter: Date;
  sans: SanSet;
  extendedKeyUsages: string[];
  isCA: boolean;
  keyAlgorithm: KeyAlgorithm | undefined;
  keyDescription: string;
  fingerprint256: string; // lowercase hex
  spkiPin: string;
  selfSigned: boolean;
}

/** Finds an extension by class (a CSR's getExtension only accepts OIDs). */
export function extensionOf<T extends x509.Extension>(exts: readonly x509.Extension[], ctor: new (...a: never[]) => T): T | null {
  return (exts.find((e) => e instanceof ctor) as T | undefined) ?? null;
}

/** Lowercase hex without leading zeros, so serials from different parsers compare equal. */
export function normalizeSerial(hex: string): string {
  return hex.toLowerCase().replace(/^0+(?=.)/, "");
}

export function sansOf(ext: x509.SubjectAlternativeNameExtension | null): SanSet {
  const dns: string[] = [];
  const ip: string[] = [];
  for (const n of ext?.names.items ?? []) {
    if (n.type === "dns") dns.push(n.value.toLowerCase());
    else if (n.type === "ip") ip.push(normalizeIp(n.value));
  }
  return { dns: dns.sort(), ip: ip.sort() };
}

export function certificateInfo(pemOrDer: string | Buffer): CertificateInfo {
  const node = new NodeX509(pemOrDer);
  const cert = new x509.X509Certificate(node.raw);
  const key = describeKeyObject(node.publicKey);
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  return {
    subjectCN: cert.subjectName.getField("CN")[0],
    subjectO: cert.subjectName.getField("O"),
    subject: cert.subject,
    issuerCN: cert.issuerName.getField("CN")[0],
    issuer: cert.issuer,
    serial: normalizeSerial(cert.serialNumber),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    sans: sansOf(cert.getExtension(x509.SubjectAlternativeNameExtension)),
    extendedKeyUsages: Array.from(eku?.usages ?? [], (u) => String(u)),
    isCA: bc?.ca ?? false,
    keyAlgorithm: key.algorithm,
    keyDescription: key.description,
    fingerprint256: node.fingerprint256.replace(/:/g, "").toLowerCase(),
    spkiPin: spkiPin(node.publicKey.export({ format: "der", type: "spki" })),
    selfSigned: node.checkIssued(node) && node.verify(node.publicKey),
  };
}
