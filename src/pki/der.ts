// Minimal DER: a strict TLV reader and a writer, for the issuance hot path (CSR in, leaf out).
// Strict on purpose: anything it does not read exactly as DER (indefinite or non-minimal lengths,
// high tag numbers, trailing bytes) is reported as unreadable, and callers fall back to the full
// X.509 library, so this path can only be faster, never more permissive. Pure.

export interface Tlv {
  tag: number;
  /** Offset of the tag byte in the buffer. */
  start: number;
  /** Offset of the first content byte. */
  contentStart: number;
  end: number;
}

/** Reads the TLV at `pos`; undefined when it is not strict DER or runs past `limit`. */
export function readTlv(buf: Uint8Array, pos: number, limit = buf.length): Tlv | undefined {
  if (pos + 2 > limit) return undefined;
  const tag = buf[pos];
  if ((tag & 0x1f) === 0x1f) return undefined; // high tag numbers: not used here
  let len = buf[pos + 1];
  let p = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 3 || p + n > limit) return undefined; // indefinite or absurd lengths
    if (buf[p] === 0) return undefined; // non-minimal
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p + i];
    p += n;
    if (len < 0x80) return undefined; // should have used the short form
  }
  if (p + len > limit) return undefined;
  return { tag, start: pos, contentStart: p, end: p + len };
}

/** The TLVs directly inside a constructed one (all of its content); undefined if any is unreadable. */
export function children(buf: Uint8Array, t: Tlv): Tlv[] | undefined {
  const out: Tlv[] = [];
  let p = t.contentStart;
  while (p < t.end) {
    const c = readTlv(buf, p, t.end);
    if (!c) return undefined;
    out.push(c);
    p = c.end;
  }
  return out;
}

export function content(buf: Uint8Array, t: Tlv): Uint8Array {
  return buf.subarray(t.contentStart, t.end);
}

export function decodeOid(bytes: Uint8Array): string | undefined {
  if (!bytes.length || bytes[bytes.length - 1] & 0x80) return undefined;
  const arcs: number[] = [];
  let v = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (v === 0 && bytes[i] === 0x80) return undefined; // non-minimal arc
    v = v * 128 + (bytes[i] & 0x7f);
    if (!(bytes[i] & 0x80)) {
      arcs.push(v);
      v = 0;
    }
    if (v > Number.MAX_SAFE_INTEGER / 256) return undefined;
  }
  const first = arcs[0];
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...arcs.slice(1)].join(".");
}

// ---- writer ----

function lengthBytes(n: number): number[] {
  if (n < 0x80) return [n];
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return [0x80 | out.length, ...out];
}

export function tlv(tag: number, ...parts: Uint8Array[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag, ...lengthBytes(body.length)]), body]);
}

export const seq = (...parts: Uint8Array[]) => tlv(0x30, ...parts);
export const set = (...parts: Uint8Array[]) => tlv(0x31, ...parts);
export const octets = (b: Uint8Array) => tlv(0x04, b);

export function encodeOid(oid: string): Buffer {
  const arcs = oid.split(".").map((x) => BigInt(x));
  const out: number[] = [];
  const push = (v: bigint) => {
    const bytes: number[] = [Number(v & 0x7fn)];
    for (v >>= 7n; v > 0n; v >>= 7n) bytes.unshift(Number(v & 0x7fn) | 0x80);
    out.push(...bytes);
  };
  push(arcs[0] * 40n + arcs[1]);
  for (const a of arcs.slice(2)) push(a);
  return tlv(0x06, Buffer.from(out));
}

/** A positive INTEGER from big-endian bytes: leading zeros stripped, a 0x00 added before a high bit. */
export function positiveInteger(bytes: Uint8Array): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  let v = Buffer.from(bytes.subarray(i));
  if (!v.length) v = Buffer.from([0]);
  if (v[0] > 0x7f) v = Buffer.concat([Buffer.from([0]), v]);
  return tlv(0x02, v);
}

/** UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 4.1.2.5), whole seconds. */
export function time(d: Date): Buffer {
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = iso.slice(0, 19).replace(/[-:T]/g, "");
  const year = d.getUTCFullYear();
  if (year >= 1950 && year < 2050) return tlv(0x17, Buffer.from(digits.slice(2) + "Z", "latin1"));
  return tlv(0x18, Buffer.from(digits + "Z", "latin1"));
}

/** A BIT STRING of named bits (bit 0 first, as KeyUsage numbers them), trailing zero bits dropped. */
export function namedBits(bits: number[]): Buffer {
  if (!bits.length) return tlv(0x03, Buffer.from([0]));
  const top = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(top / 8) + 1);
  for (const b of bits) bytes[b >> 3] |= 0x80 >> (b & 7);
  return tlv(0x03, Buffer.from([7 - (top & 7)]), bytes);
}
