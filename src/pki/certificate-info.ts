// Reads the facts nodecert cares about out of a certificate. Pure.
import { X509Certificate as NodeX509 } from "node:crypto";
import { x509 } from "../crypto/provider.js";
import { describeKeyObject, type KeyAlgorithm } from "./keys.js";
import { spkiPin } from "./pin.js";
import { normalizeIp, type SanSet } from "./names.js";

export const EKU_SERVER_AUTH = "1.3.6.1.5.5.7.3.1";
export const EKU_CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";
/**
 * nodecert's control-plane identity: only the server's own TLS certificate carries it, never a node
 * certificate, so agents, `join` and the admin client can tell the control plane from a node whose
 * serving certificate names the same address. OID 2.25.<UUID as an integer> (X.667), drawn once
 * from UUID 85bdc36e-02dc-4a5c-ae73-bb6c7fa70a9a.
 */
export const EKU_NODECERT_CONTROL_PLANE = "2.25.177772631331512767027557100577846921882";

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
    // Node's parser, not @peculiar's: it prints arcs beyond 2^53 (the control-plane OID) correctly.
    extendedKeyUsages: node.keyUsage ?? [],
    isCA: bc?.ca ?? false,
    keyAlgorithm: key.algorithm,
    keyDescription: key.description,
    fingerprint256: node.fingerprint256.replace(/:/g, "").toLowerCase(),
    spkiPin: spkiPin(node.publicKey.export({ format: "der", type: "spki" })),
    selfSigned: node.checkIssued(node) && node.verify(node.publicKey),
  };
}
