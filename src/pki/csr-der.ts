// The fast CSR reader: reads a kubelet CSR of the shape agents send (subject O/CN, an
// extensionRequest with key usage, extended key usage and DNS/IP SANs, an ECDSA or RSA
// self-signature) straight from DER and checks its signature with node:crypto. It returns exactly
// what parseCsr (@peculiar/x509) returns for such a CSR (test/pki/csr-der.test.ts compares them);
// anything else (other attributes, extensions, name types, SAN types, algorithms, or DER it does not
// read strictly) makes it return undefined, and parseCsrFast hands the CSR to parseCsr. So hostile
// input still meets the full parser and its error messages. Pure.
import { createPublicKey, verify as cryptoVerify, type KeyObject } from "node:crypto";
import { children, content, decodeOid, readTlv, type Tlv } from "./der.js";
import { describeKeyObject } from "./key-algorithms.js";
import { normalizeIp } from "./names.js";
import { parseCsr, type ParsedCsr } from "./csr.js";

const PEM = /^-----BEGIN CERTIFICATE REQUEST-----\r?\n([A-Za-z0-9+/=\r\n]+?)\r?\n-----END CERTIFICATE REQUEST-----\r?\n?$/;
const NAMES: Record<string, string> = { "2.5.4.3": "CN", "2.5.4.10": "O" };
const SIG: Record<string, { name: string; hash: string; digest: string; params: "none" | "null" }> = {
  "1.2.840.10045.4.3.2": { name: "ECDSA", hash: "SHA-256", digest: "sha256", params: "none" },
  "1.2.840.10045.4.3.3": { name: "ECDSA", hash: "SHA-384", digest: "sha384", params: "none" },
  "1.2.840.113549.1.1.11": { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256", digest: "sha256", params: "null" },
};
const EXT_REQUEST = "1.2.840.113549.1.9.14";
const KU = "2.5.29.15";
const EKU = "2.5.29.37";
const SAN = "2.5.29.17";

/** Parses a CSR: the DER fast path when it can read it exactly, the full parser otherwise. */
export async function parseCsrFast(pem: string): Promise<ParsedCsr> {
  return (await readCsrDer(pem)) ?? parseCsr(pem);
}

/** crypto.verify with a callback: OpenSSL runs it on libuv's thread pool, off the event loop. */
function verifyOffLoop(digest: string, data: Buffer, key: KeyObject, signature: Buffer): Promise<boolean> {
  return new Promise((resolve, reject) => cryptoVerify(digest, data, key, signature, (e, ok) => (e ? reject(e) : resolve(ok))));
}

function strings(buf: Uint8Array, t: Tlv): string | undefined {
  // PrintableString or UTF8String whose bytes round-trip (no invalid UTF-8).
  if (t.tag !== 0x13 && t.tag !== 0x0c) return undefined;
  const raw = Buffer.from(content(buf, t));
  const s = raw.toString("utf8");
  if (!Buffer.from(s, "utf8").equals(raw)) return undefined;
  if (t.tag === 0x13 && !/^[A-Za-z0-9 '()+,\-./:=?]*$/.test(s)) return undefined;
  return s;
}

function ipString(b: Uint8Array): string | undefined {
  if (b.length === 4) return Array.from(b).join(".");
  if (b.length === 16) {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(((b[i] << 8) | b[i + 1]).toString(16));
    return normalizeIp(groups.join(":"));
  }
  return undefined;
}

const CURVES: Record<string, { crv: string; size: number }> = { "1.2.840.10045.3.1.7": { crv: "P-256", size: 32 }, "1.3.132.0.34": { crv: "P-384", size: 48 } };

/**
 * An uncompressed P-256/P-384 point loaded from its coordinates (JWK): OpenSSL 3 checks it is on the
 * curve just the same, at about two thirds of the cost of decoding the SPKI DER. Anything else: undefined.
 */
function ecPublicKey(der: Buffer, spkiT: Tlv): KeyObject | undefined {
  const parts = children(der, spkiT);
  const alg = parts?.[0]?.tag === 0x30 ? children(der, parts[0]) : undefined;
  if (!parts || parts.length !== 2 || !alg || alg.length !== 2 || alg[0].tag !== 0x06 || alg[1].tag !== 0x06 || parts[1].tag !== 0x03) return undefined;
  if (decodeOid(content(der, alg[0])) !== "1.2.840.10045.2.1") return undefined;
  const curve = CURVES[decodeOid(content(der, alg[1])) ?? ""];
  const bits = content(der, parts[1]);
  if (!curve || bits.length !== 2 + 2 * curve.size || bits[0] !== 0 || bits[1] !== 0x04) return undefined;
  const x = Buffer.from(bits.subarray(2, 2 + curve.size)).toString("base64url");
  const y = Buffer.from(bits.subarray(2 + curve.size)).toString("base64url");
  return createPublicKey({ key: { kty: "EC", crv: curve.crv, x, y }, format: "jwk" });
}

/** undefined: not a CSR this reader handles exactly (the caller uses parseCsr). */
export async function readCsrDer(pem: string): Promise<ParsedCsr | undefined> {
  const m = PEM.exec(pem);
  if (!m) return undefined;
  const der = Buffer.from(m[1].replace(/\s+/g, ""), "base64");
  const outer = readTlv(der, 0);
  if (!outer || outer.tag !== 0x30 || outer.end !== der.length) return undefined;
  const top = children(der, outer);
  if (!top || top.length !== 3 || top[0].tag !== 0x30 || top[1].tag !== 0x30 || top[2].tag !== 0x03) return undefined;
  const [info, sigAlg, sigBits] = top;
  const infoParts = children(der, info);
  if (!infoParts || infoParts.length !== 4) return undefined;
  const [version, name, spkiT, attrs] = infoParts;
  if (version.tag !== 0x02 || version.end - version.contentStart !== 1 || der[version.contentStart] !== 0) return undefined;
  if (name.tag !== 0x30 || spkiT.tag !== 0x30 || attrs.tag !== 0xa0) return undefined;

  // Subject: single-valued RDNs of CN and O.
  const subjectCN: string[] = [];
  const subjectO: string[] = [];
  const subjectFields: string[] = [];
  for (const rdn of children(der, name) ?? [undefined]) {
    if (!rdn || rdn.tag !== 0x31) return undefined;
    const avas = children(der, rdn);
    if (!avas || avas.length !== 1 || avas[0].tag !== 0x30) return undefined;
    const av = children(der, avas[0]);
    if (!av || av.length !== 2 || av[0].tag !== 0x06) return undefined;
    const field = NAMES[decodeOid(content(der, av[0])) ?? ""];
    const value = strings(der, av[1]);
    if (!field || value === undefined) return undefined;
    subjectFields.push(field);
    (field === "CN" ? subjectCN : subjectO).push(value);
  }

  // Attributes: exactly one extensionRequest holding key usage, EKU and SANs, each at most once.
  const attrList = children(der, attrs);
  if (!attrList || attrList.length !== 1 || attrList[0].tag !== 0x30) return undefined;
  const attr = children(der, attrList[0]);
  if (!attr || attr.length !== 2 || attr[0].tag !== 0x06 || decodeOid(content(der, attr[0])) !== EXT_REQUEST || attr[1].tag !== 0x31) return undefined;
  const extSeqs = children(der, attr[1]);
  if (!extSeqs || extSeqs.length !== 1 || extSeqs[0].tag !== 0x30) return undefined;
  const seen = new Set<string>();
  let ekus: string[] = [];
  const dns: string[] = [];
  const ip: string[] = [];
  for (const ext of children(der, extSeqs[0]) ?? [undefined]) {
    if (!ext || ext.tag !== 0x30) return undefined;
    const parts = children(der, ext);
    if (!parts || parts.length < 2 || parts.length > 3 || parts[0].tag !== 0x06) return undefined;
    const oid = decodeOid(content(der, parts[0]));
    if (!oid || seen.has(oid)) return undefined;
    seen.add(oid);
    if (parts.length === 3 && (parts[1].tag !== 0x01 || parts[1].end - parts[1].contentStart !== 1 || (der[parts[1].contentStart] !== 0xff && der[parts[1].contentStart] !== 0))) return undefined;
    const valueT = parts[parts.length - 1];
    if (valueT.tag !== 0x04) return undefined;
    const inner = readTlv(der, valueT.contentStart, valueT.end);
    if (!inner || inner.end !== valueT.end) return undefined;
    if (oid === KU) {
      if (inner.tag !== 0x03 || inner.end - inner.contentStart < 2 || der[inner.contentStart] > 7) return undefined;
    } else if (oid === EKU) {
      if (inner.tag !== 0x30) return undefined;
      const list = children(der, inner);
      if (!list || !list.length) return undefined;
      ekus = [];
      for (const o of list) {
        const s = o.tag === 0x06 ? decodeOid(content(der, o)) : undefined;
        if (!s) return undefined;
        ekus.push(s);
      }
    } else if (oid === SAN) {
      if (inner.tag !== 0x30) return undefined;
      const list = children(der, inner);
      if (!list || !list.length) return undefined;
      for (const g of list) {
        if (g.tag === 0x82) {
          const v = content(der, g);
          if (v.some((c) => c < 0x20 || c > 0x7e)) return undefined;
          dns.push(Buffer.from(v).toString("latin1").toLowerCase());
        } else if (g.tag === 0x87) {
          const v = ipString(content(der, g));
          if (!v) return undefined;
          ip.push(normalizeIp(v));
        } else return undefined;
      }
    } else return undefined;
  }

  // Signature algorithm and the self-signature.
  const sigParts = children(der, sigAlg);
  const alg = sigParts?.[0]?.tag === 0x06 ? SIG[decodeOid(content(der, sigParts[0])) ?? ""] : undefined;
  if (!alg || !sigParts) return undefined;
  if (alg.params === "none" ? sigParts.length !== 1 : sigParts.length !== 2 || sigParts[1].tag !== 0x05 || sigParts[1].end !== sigParts[1].contentStart) return undefined;
  if (der[sigBits.contentStart] !== 0 || sigBits.end - sigBits.contentStart < 2) return undefined;
  if (alg.name === "ECDSA") {
    // An ECDSA-Sig-Value the reader can see is two INTEGERs; anything else is parseCsr's to judge.
    const sv = readTlv(der, sigBits.contentStart + 1, sigBits.end);
    const rs = sv && sv.tag === 0x30 && sv.end === sigBits.end ? children(der, sv) : undefined;
    if (!rs || rs.length !== 2 || rs.some((x) => x.tag !== 0x02)) return undefined;
  }
  const spkiDer = der.subarray(spkiT.start, spkiT.end);
  let key: ReturnType<typeof describeKeyObject>;
  let rsaPublicExponent: bigint | undefined;
  let signatureValid: boolean;
  try {
    const ko = ecPublicKey(der, spkiT) ?? createPublicKey({ key: spkiDer, format: "der", type: "spki" });
    if (ko.asymmetricKeyType !== (alg.name === "ECDSA" ? "ec" : "rsa")) return undefined;
    key = describeKeyObject(ko);
    if (ko.asymmetricKeyType === "rsa") rsaPublicExponent = ko.asymmetricKeyDetails?.publicExponent;
    signatureValid = await verifyOffLoop(alg.digest, der.subarray(info.start, info.end), ko, der.subarray(sigBits.contentStart + 1, sigBits.end));
  } catch {
    return undefined; // a key OpenSSL will not load: parseCsr says why
  }
  if (!key.algorithm) return undefined;
  return {
    subjectCN,
    subjectO,
    subjectFields,
    sans: { dns: dns.sort(), ip: ip.sort() },
    otherSanTypes: [],
    extendedKeyUsages: ekus,
    keyAlgorithm: key.algorithm,
    keyDescription: key.description,
    keyBits: key.bits,
    rsaPublicExponent,
    keyProblem: undefined,
    spki: spkiDer.buffer.slice(spkiDer.byteOffset, spkiDer.byteOffset + spkiDer.byteLength) as ArrayBuffer,
    signatureValid,
    signatureAlgorithm: { name: alg.name, hash: alg.hash },
    pem,
  };
}
