// CSRs a hostile node could send, made with the openssl CLI and patched by hand at the DER level
// (never with src/pki): an RSA key with public exponent 1, whose "signature" is just the padded
// digest, and an EC key whose point is not on its curve.
import { createHash, createPublicKey } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { run, tempDir } from "./helpers.js";

/** One DER element: tag, header length and total length. */
interface Tlv {
  tag: number;
  header: number;
  length: number;
  bytes: Buffer;
}

function readTlv(buf: Buffer, at = 0): Tlv {
  const tag = buf[at];
  let len = buf[at + 1];
  let header = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[at + 2 + i];
    header += n;
  }
  return { tag, header, length: header + len, bytes: buf.subarray(at, at + header + len) };
}

/** The child elements of a constructed element. */
function children(el: Buffer): Buffer[] {
  const t = readTlv(el);
  const out: Buffer[] = [];
  for (let at = t.header; at < t.length; ) {
    const c = readTlv(el, at);
    out.push(c.bytes);
    at += c.length;
  }
  return out;
}

function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  let len: Buffer;
  if (n < 0x80) len = Buffer.from([n]);
  else {
    const bytes: number[] = [];
    for (let x = n; x > 0; x = Math.floor(x / 256)) bytes.unshift(x & 0xff);
    len = Buffer.from([0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([Buffer.from([tag]), len, content]);
}

const integer = (unsigned: Buffer) => tlv(0x02, unsigned[0] & 0x80 ? Buffer.concat([Buffer.from([0]), unsigned]) : unsigned);
const seq = (...parts: Buffer[]) => tlv(0x30, Buffer.concat(parts));
const bitString = (b: Buffer) => tlv(0x03, Buffer.concat([Buffer.from([0]), b]));
const RSA_ENCRYPTION = Buffer.from("06092a864886f70d0101010500", "hex"); // OID 1.2.840.113549.1.1.1, NULL
const SHA256_WITH_RSA = Buffer.from("300d06092a864886f70d01010b0500", "hex");
const SHA256_DIGEST_INFO_PREFIX = Buffer.from("3031300d060960864801650304020105000420", "hex");

export function pem(der: Buffer, label = "CERTIFICATE REQUEST"): string {
  return `-----BEGIN ${label}-----\n${der.toString("base64").replace(/(.{64})/g, "$1\n").replace(/\n$/, "")}\n-----END ${label}-----\n`;
}

export interface OpensslCsrOptions {
  nodeName: string;
  kind: "client" | "serving";
  sans?: string[];
  /** openssl genpkey options, e.g. ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_pubexp:3"]. */
  genpkey: string[];
}

/** A key and CSR made by the openssl CLI; returns the CSR's DER and the key file. */
export async function opensslCsr(o: OpensslCsrOptions): Promise<{ der: Buffer; keyFile: string }> {
  const d = tempDir("hostile-csr-");
  const keyFile = path.join(d, "key.pem");
  const csrFile = path.join(d, "csr.der");
  const g = await run("openssl", ["genpkey", ...o.genpkey, "-out", keyFile]);
  if (g.code !== 0) throw new Error(`openssl genpkey: ${g.stderr}`);
  const ext = o.kind === "client" ? ["-addext", "extendedKeyUsage=clientAuth"] : ["-addext", "extendedKeyUsage=serverAuth", "-addext", `subjectAltName=${(o.sans ?? []).map((s) => (/^[\d.]+$|:/.test(s) ? `IP:${s}` : `DNS:${s}`)).join(",")}`];
  const r = await run("openssl", ["req", "-new", "-key", keyFile, "-subj", `/O=system:nodes/CN=system:node:${o.nodeName}`, ...ext, "-outform", "DER", "-out", csrFile]);
  if (r.code !== 0) throw new Error(`openssl req: ${r.stderr}`);
  return { der: readFileSync(csrFile), keyFile };
}

/**
 * Rewrites an openssl RSA CSR to carry the same modulus with public exponent 1, "signed" with the
 * EMSA-PKCS1-v1_5 encoding of its digest: s^1 mod n = s, so it verifies without any private key.
 */
export function withRsaExponentOne(csrDer: Buffer, keyFile: string): Buffer {
  const jwk = createPublicKey(readFileSync(keyFile)).export({ format: "jwk" }) as { n: string };
  const n = Buffer.from(jwk.n, "base64url");
  const spki = seq(seq(RSA_ENCRYPTION), bitString(seq(integer(n), integer(Buffer.from([1])))));
  const [cri] = children(csrDer);
  const [version, subject, , ...rest] = children(cri);
  const newCri = seq(version, subject, spki, ...rest);
  const digest = createHash("sha256").update(newCri).digest();
  const t = Buffer.concat([SHA256_DIGEST_INFO_PREFIX, digest]);
  const em = Buffer.concat([Buffer.from([0x00, 0x01]), Buffer.alloc(n.length - t.length - 3, 0xff), Buffer.from([0x00]), t]);
  return seq(newCri, SHA256_WITH_RSA, bitString(em));
}

/** Moves an openssl EC CSR's public point off its curve (the last byte of y changes). */
export function withPointOffCurve(csrDer: Buffer): Buffer {
  const out = Buffer.from(csrDer);
  const [cri] = children(out);
  const spki = children(cri)[2];
  const key = children(spki)[1]; // BIT STRING: 00 04 x y
  const start = out.indexOf(key);
  out[start + key.length - 1] ^= 0x01;
  return out;
}
