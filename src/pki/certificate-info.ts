// Reads the facts nodecert cares about out of a certificate. Pure. Parses with Node's own
// crypto.X509Certificate (OpenSSL), so reading a certificate (`nodecert status`, the agent's checks,
// the server's mTLS identity) needs no X.509 library in the process.
import { X509Certificate as NodeX509 } from "node:crypto";
import { describeKeyObject, type KeyAlgorithm } from "./key-algorithms.js";
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
  /** RFC 4514-style, in certificate order: "O=system:nodes, CN=system:node:n1". */
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

/** Lowercase hex without leading zeros, so serials from different parsers compare equal. */
export function normalizeSerial(hex: string): string {
  return hex.toLowerCase().replace(/^0+(?=.)/, "");
}

/** One attribute of a distinguished name, its value unescaped. */
export interface NameAttribute {
  type: string;
  value: string;
}

/**
 * Node prints a name one RDN per line ("O=system:nodes\nCN=system:node:n1"), the attributes of a
 * multi-valued RDN joined by " + ", values escaped as RFC 2253 does (`\,` `\+` `\"` `\\` ...) and
 * control characters as `\XX` hex, so a newline or " + " can never come from inside a value.
 */
export function parseNodeName(printed: string): { rdns: NameAttribute[][]; text: string } {
  const rdns: NameAttribute[][] = [];
  for (const line of printed.split("\n")) {
    if (!line) continue;
    rdns.push(
      line.split(" + ").map((ava) => {
        const eq = ava.indexOf("=");
        return { type: ava.slice(0, eq), value: unescapeDnValue(ava.slice(eq + 1)) };
      }),
    );
  }
  // The same text @peculiar/x509 printed (and audit entries and messages carry): ", " between
  // RDNs, "+" inside one, values still escaped.
  const text = printed
    .split("\n")
    .filter(Boolean)
    .map((l) => l.split(" + ").join("+"))
    .join(", ");
  return { rdns, text };
}

function unescapeDnValue(v: string): string {
  const bytes: number[] = [];
  const raw = Buffer.from(v, "utf8");
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] !== 0x5c /* \ */ || i + 1 >= raw.length) {
      bytes.push(raw[i]);
      continue;
    }
    const hex = raw.subarray(i + 1, i + 3).toString("latin1");
    if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(raw[i + 1]);
      i += 1;
    }
  }
  return Buffer.from(bytes).toString("utf8");
}

function field(rdns: NameAttribute[][], type: string): string[] {
  return rdns.flat().filter((a) => a.type === type).map((a) => a.value);
}

/**
 * Node prints subjectAltName as `TYPE:value, TYPE:value`; a value holding a character that could
 * be misread (",", quotes, spaces, ...) is printed as a JSON string literal, so this split is exact.
 */
export function parseSubjectAltName(printed: string | undefined): { type: string; value: string }[] {
  const out: { type: string; value: string }[] = [];
  if (!printed) return out;
  let i = 0;
  while (i < printed.length) {
    const colon = printed.indexOf(":", i);
    if (colon < 0) break;
    const type = printed.slice(i, colon);
    let j = colon + 1;
    let value: string;
    if (printed[j] === '"') {
      let k = j + 1;
      while (k < printed.length && printed[k] !== '"') k += printed[k] === "\\" ? 2 : 1;
      value = JSON.parse(printed.slice(j, k + 1)) as string;
      j = k + 1;
    } else {
      const end = printed.indexOf(", ", j);
      value = printed.slice(j, end < 0 ? printed.length : end);
      j = end < 0 ? printed.length : end;
    }
    out.push({ type, value });
    i = printed.startsWith(", ", j) ? j + 2 : j;
  }
  return out;
}

export function sansFromAltName(printed: string | undefined): SanSet {
  const dns: string[] = [];
  const ip: string[] = [];
  for (const n of parseSubjectAltName(printed)) {
    if (n.type === "DNS") dns.push(n.value.toLowerCase());
    else if (n.type === "IP Address" && !n.value.startsWith("<")) ip.push(normalizeIp(n.value));
  }
  return { dns: dns.sort(), ip: ip.sort() };
}

/** OpenSSL's "Jun  1 00:00:00 2026 GMT". */
function parseOpensslTime(s: string): Date {
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) throw new Error(`cannot read the certificate time "${s}"`);
  return d;
}

export function certificateInfo(pemOrDer: string | Buffer): CertificateInfo {
  const node = new NodeX509(pemOrDer);
  const key = describeKeyObject(node.publicKey);
  const subject = parseNodeName(node.subject);
  const issuer = parseNodeName(node.issuer);
  return {
    subjectCN: field(subject.rdns, "CN")[0],
    subjectO: field(subject.rdns, "O"),
    subject: subject.text,
    issuerCN: field(issuer.rdns, "CN")[0],
    issuer: issuer.text,
    serial: normalizeSerial(node.serialNumber),
    notBefore: parseOpensslTime(node.validFrom),
    notAfter: parseOpensslTime(node.validTo),
    sans: sansFromAltName(node.subjectAltName),
    // Node calls the extended key usages "keyUsage"; undefined when the extension is absent.
    extendedKeyUsages: [...(node.keyUsage ?? [])],
    isCA: node.ca,
    keyAlgorithm: key.algorithm,
    keyDescription: key.description,
    fingerprint256: node.fingerprint256.replace(/:/g, "").toLowerCase(),
    spkiPin: spkiPin(node.publicKey.export({ format: "der", type: "spki" })),
    selfSigned: node.checkIssued(node) && node.verify(node.publicKey),
  };
}
