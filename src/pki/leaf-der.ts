// The fast leaf writer: a node's client or serving certificate built as DER and signed with
// node:crypto, from a signing context parsed once per CA load. It writes the same bytes as
// pki/certificate.ts issueLeaf (@peculiar/x509) for the same inputs (test/pki/leaf-der.test.ts
// proves it byte for byte), and what it returns (serial, validity, fingerprint) is known from
// building it, so nothing re-parses the certificate just made. Subjects it cannot write exactly
// like the library (anything but single-valued O/CN RDNs of printable text) make it return
// undefined, and the caller uses issueLeaf. Pure.
import { createHash, KeyObject, sign as cryptoSign, X509Certificate } from "node:crypto";
import { children, content, decodeOid, encodeOid, namedBits, octets, positiveInteger, readTlv, seq, set, time, tlv } from "./der.js";
import { BACKDATE_MS, extendedKeyUsagesFor, randomSerial, type Issuer, type LeafKind, type RandomBytes } from "./certificate.js";
import { normalizeSerial } from "./certificate-info.js";
import { describeKeyObject, keyObjectFromSpki, type KeyAlgorithm } from "./key-algorithms.js";
import { encodePem } from "./pem.js";
import type { SanSet } from "./names.js";
import { isIP } from "node:net";

/** What signing needs from the CA, parsed once per CA load (and again on a CA rotation). */
export interface SigningContext {
  /** The CA certificate's subject, exact DER (Go compares issuer and subject byte for byte). */
  issuerNameDer: Buffer;
  /** The authorityKeyIdentifier extension, ready to append. */
  akiExtension: Buffer;
  notAfter: Date;
  /** SHA-256 of the CA certificate's DER, lowercase hex. */
  fingerprint256: string;
  key: KeyObject;
  algorithm: KeyAlgorithm;
  /** AlgorithmIdentifier DER of the signature, and the digest node:crypto signs with. */
  sigAlgDer: Buffer;
  digest: string | null;
}

const OID_SKI = "2.5.29.14";
const SIG_ALGS: Record<KeyAlgorithm, { der: Buffer; digest: string | null }> = {
  "ECDSA-P256": { der: seq(encodeOid("1.2.840.10045.4.3.2")), digest: "sha256" },
  "ECDSA-P384": { der: seq(encodeOid("1.2.840.10045.4.3.3")), digest: "sha384" },
  "RSA-2048": { der: seq(encodeOid("1.2.840.113549.1.1.11"), Buffer.from([0x05, 0x00])), digest: "sha256" },
  "RSA-3072": { der: seq(encodeOid("1.2.840.113549.1.1.11"), Buffer.from([0x05, 0x00])), digest: "sha256" },
  "RSA-4096": { der: seq(encodeOid("1.2.840.113549.1.1.11"), Buffer.from([0x05, 0x00])), digest: "sha256" },
  Ed25519: { der: seq(encodeOid("1.3.101.112")), digest: null },
};

/** RFC 5280 key identifier method 1 (what @peculiar/x509 uses): SHA-1 of the subjectPublicKey bits. */
function keyIdentifier(spkiDer: Uint8Array): Buffer {
  const outer = readTlv(spkiDer, 0);
  const parts = outer && children(spkiDer, outer);
  const bits = parts?.[1];
  if (!bits || bits.tag !== 0x03) throw new Error("not a SubjectPublicKeyInfo");
  return createHash("sha1").update(spkiDer.subarray(bits.contentStart + 1, bits.end)).digest();
}

/** Parses the CA certificate once: its subject DER, key identifier, validity and fingerprint. */
export function signingContext(issuer: Issuer): SigningContext {
  const x = new X509Certificate(issuer.certPem);
  const der = x.raw;
  const cert = readTlv(der, 0);
  const tbs = cert && children(der, cert)?.[0];
  const fields = tbs && children(der, tbs);
  if (!fields) throw new Error("the CA certificate is not DER this server can read");
  const off = fields[0].tag === 0xa0 ? 1 : 0;
  const issuerNameDer = Buffer.from(der.subarray(fields[off + 4].start, fields[off + 4].end));
  // The CA's own subjectKeyIdentifier if it has one, else method 1 over its key (as issueLeaf does).
  let keyId: Buffer | undefined;
  const extsWrap = fields.find((f) => f.tag === 0xa3);
  const exts = extsWrap && children(der, extsWrap)?.[0];
  for (const e of (exts && children(der, exts)) ?? []) {
    const parts = children(der, e);
    if (!parts || decodeOid(content(der, parts[0])) !== OID_SKI) continue;
    const inner = readTlv(der, parts[parts.length - 1].contentStart, parts[parts.length - 1].end);
    if (inner?.tag === 0x04) keyId = Buffer.from(content(der, inner));
  }
  keyId ??= keyIdentifier(x.publicKey.export({ format: "der", type: "spki" }));
  const alg = SIG_ALGS[issuer.algorithm];
  return {
    issuerNameDer,
    akiExtension: seq(encodeOid("2.5.29.35"), octets(seq(tlv(0x80, keyId)))),
    notAfter: new Date(x.validTo),
    fingerprint256: x.fingerprint256.replace(/:/g, "").toLowerCase(),
    key: KeyObject.from(issuer.privateKey),
    algorithm: issuer.algorithm,
    sigAlgDer: alg.der,
    digest: alg.digest,
  };
}

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;
const NAME_OIDS: Record<string, string> = { CN: "2.5.4.3", O: "2.5.4.10" };

/** The subject as @peculiar/x509 writes it, or undefined when this writer cannot be sure to match. */
function subjectDer(subject: ReadonlyArray<Record<string, string[]>>): Buffer | undefined {
  const rdns: Buffer[] = [];
  for (const rdn of subject) {
    const keys = Object.keys(rdn);
    if (keys.length !== 1 || !NAME_OIDS[keys[0]] || rdn[keys[0]].length !== 1) return undefined;
    const value = rdn[keys[0]][0];
    if (!PRINTABLE.test(value) || value.startsWith("#")) return undefined;
    rdns.push(set(seq(encodeOid(NAME_OIDS[keys[0]]), tlv(0x13, Buffer.from(value, "latin1")))));
  }
  return seq(...rdns);
}

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split(".").map(Number));
  const [head, tail] = ip.split("::");
  const groups = (s: string | undefined) => (s ? s.split(":") : []);
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const all = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

export interface FastLeafParams {
  ctx: SigningContext;
  subject: ReadonlyArray<Record<string, string[]>>;
  spki: ArrayBuffer;
  kind: LeafKind;
  sans?: SanSet;
  now: Date;
  lifetimeMs: number;
  random: RandomBytes;
  /** The subject key's algorithm when the caller knows it already (from the parsed CSR); else read from spki. */
  subjectKeyAlgorithm?: KeyAlgorithm;
}

export interface FastLeaf {
  pem: string;
  der: Buffer;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  fingerprint256: string;
}

const critical = Buffer.from([0x01, 0x01, 0xff]);

// The extensions that depend only on the leaf's kind and key type are the same bytes every time:
// encoded once (the hot path builds one or two leaves per request).
const basicConstraintsExt = seq(encodeOid("2.5.29.19"), critical, octets(seq()));
const keyUsageExt = new Map<string, Buffer>();
const ekuExt = new Map<LeafKind, Buffer>();
const OID_SAN_DER = encodeOid("2.5.29.17");
const VERSION_V3 = tlv(0xa0, Buffer.from([0x02, 0x01, 0x02]));
function cached<K, V>(m: Map<K, V>, k: K, make: () => V): V {
  let v = m.get(k);
  if (v === undefined) m.set(k, (v = make()));
  return v;
}

export async function issueLeafDer(p: FastLeafParams): Promise<FastLeaf | undefined> {
  const subject = subjectDer(p.subject);
  if (!subject) return undefined;
  const spki = Buffer.from(p.spki);
  if (p.sans?.dns.some((d) => !/^[\x20-\x7e]*$/.test(d))) return undefined;
  if (p.sans?.ip.some((ip) => !isIP(ip) || ip.includes("%") || (isIP(ip) === 6 && ip.includes(".")))) return undefined;
  const subjectAlg = p.subjectKeyAlgorithm ?? describeKeyObject(keyObjectFromSpki(p.spki)).algorithm;
  const serialHex = randomSerial(p.random);
  // Whole seconds, as the certificate holds them.
  const notBefore = new Date(Math.floor((p.now.getTime() - BACKDATE_MS) / 1000) * 1000);
  const notAfter = new Date(Math.floor(Math.min(p.now.getTime() + p.lifetimeMs, p.ctx.notAfter.getTime()) / 1000) * 1000);
  // digitalSignature always; keyEncipherment for RSA keys (keyUsageFor in csr.ts).
  const rsa = !!subjectAlg?.startsWith("RSA");
  const exts: Buffer[] = [
    basicConstraintsExt,
    cached(keyUsageExt, rsa ? "rsa" : "other", () => seq(encodeOid("2.5.29.15"), critical, octets(namedBits(rsa ? [0, 2] : [0])))),
    cached(ekuExt, p.kind, () => seq(encodeOid("2.5.29.37"), octets(seq(...extendedKeyUsagesFor(p.kind).map(encodeOid))))),
    seq(encodeOid(OID_SKI), octets(octets(keyIdentifier(spki)))),
    p.ctx.akiExtension,
  ];
  if (p.kind === "serving" || p.kind === "server") {
    const sans = p.sans ?? { dns: [], ip: [] };
    exts.push(seq(OID_SAN_DER, octets(seq(...sans.dns.map((d) => tlv(0x82, Buffer.from(d, "latin1"))), ...sans.ip.map((ip) => tlv(0x87, ipBytes(ip)))))));
  }
  const tbs = seq(
    VERSION_V3,
    positiveInteger(Buffer.from(serialHex, "hex")),
    p.ctx.sigAlgDer,
    p.ctx.issuerNameDer,
    seq(time(notBefore), time(notAfter)),
    subject,
    spki,
    tlv(0xa3, seq(...exts)),
  );
  // With a callback OpenSSL signs on libuv's thread pool: the event loop goes on with TLS and HTTP.
  const signature = await new Promise<Buffer>((resolve, reject) => cryptoSign(p.ctx.digest, tbs, p.ctx.key, (e, sig) => (e ? reject(e) : resolve(sig))));
  const der = seq(tbs, p.ctx.sigAlgDer, tlv(0x03, Buffer.from([0]), signature));
  return {
    der,
    pem: encodePem("CERTIFICATE", der),
    serial: normalizeSerial(serialHex),
    notBefore,
    notAfter,
    fingerprint256: createHash("sha256").update(der).digest("hex"),
  };
}
