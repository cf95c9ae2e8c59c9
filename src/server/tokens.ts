// Bootstrap tokens: "[a-z0-9]{6}.[a-z0-9]{16}", stored as a hash of the secret only.
import { createHash, timingSafeEqual } from "node:crypto";
import type { SanGrant } from "./store/store.js";

import { TOKEN_RE } from "../protocol/token.js";
export { TOKEN_RE };
const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

export interface ParsedToken {
  id: string;
  secret: string;
}

export function parseToken(token: string): ParsedToken | undefined {
  const m = TOKEN_RE.exec(token.trim());
  return m ? { id: m[1], secret: m[2] } : undefined;
}

/** Draws characters by rejection sampling so every character is equally likely. */
export function generateToken(random: (n: number) => Uint8Array): string {
  const pick = (len: number) => {
    let out = "";
    while (out.length < len) {
      for (const b of random(len * 2)) {
        if (b < 252 && out.length < len) out += ALPHABET[b % 36];
      }
    }
    return out;
  };
  return `${pick(6)}.${pick(16)}`;
}

export function hashSecret(secret: string): string {
  return createHash("sha256").update("nodecert-token:" + secret).digest("hex");
}

/** Constant-time: compares fixed-length digests, so neither content nor length leaks through timing. */
export function secretMatches(secret: string, storedHash: string): boolean {
  const a = Buffer.from(hashSecret(secret), "hex");
  const b = Buffer.from(storedHash, "hex");
  if (b.length !== a.length) return false;
  return timingSafeEqual(a, b);
}

export interface TokenRecord {
  id: string;
  secretHash: string;
  node?: string;
  usesLeft: number;
  expiresAt: Date;
  createdAt: Date;
  description?: string;
  /** Serving SANs the node joining with it may hold from then on (recorded as its grants). */
  sans?: { dns: string[]; ip: string[]; cidrs: string[] };
}

export type TokenCheck = { ok: true; record: TokenRecord } | { ok: false; code: string; reason: string };

/** Decides whether a presented token may be used now. Does not consume it. */
export function checkToken(presented: string, record: TokenRecord | undefined, now: Date): TokenCheck {
  const parsed = parseToken(presented);
  if (!parsed) return { ok: false, code: "token-malformed", reason: "bootstrap token must look like abcdef.0123456789abcdef" };
  if (!record || !secretMatches(parsed.secret, record.secretHash)) {
    return { ok: false, code: "token-invalid", reason: "bootstrap token is not recognised: create one with 'nodecert token create'" };
  }
  if (record.expiresAt <= now) {
    return { ok: false, code: "token-expired", reason: `bootstrap token ${record.id} expired at ${record.expiresAt.toISOString()}: create a new one` };
  }
  if (record.usesLeft <= 0) {
    return { ok: false, code: "token-used", reason: `bootstrap token ${record.id} has already been used: create a new one` };
  }
  return { ok: true, record };
}

/** Counts failed attempts per source and blocks a source that fails too often. */
export class FailureLimiter {
  private failures = new Map<string, number[]>();
  constructor(
    private readonly maxFailures: number,
    private readonly windowMs: number,
    private readonly now: () => number,
  ) {}

  /** Milliseconds until this source may try again; 0 when it may try now. */
  retryAfter(source: string): number {
    const list = this.prune(source);
    if (list.length < this.maxFailures) return 0;
    return list[0] + this.windowMs - this.now();
  }

  fail(source: string): void {
    const list = this.prune(source);
    list.push(this.now());
    this.failures.set(source, list);
  }

  private prune(source: string): number[] {
    const cutoff = this.now() - this.windowMs;
    const list = (this.failures.get(source) ?? []).filter((t) => t > cutoff);
    if (list.length) this.failures.set(source, list);
    else this.failures.delete(source);
    return list;
  }
}

/** The grants a token's bound SANs become for the node that joins with it. */
export function tokenGrants(tokenId: string, sans: TokenRecord["sans"], now: Date): SanGrant[] {
  if (!sans) return [];
  const source = `token:${tokenId}`;
  return [
    ...sans.dns.map((value) => ({ kind: "dns" as const, value, source, createdAt: now })),
    ...sans.ip.map((value) => ({ kind: "ip" as const, value, source, createdAt: now })),
    ...sans.cidrs.map((value) => ({ kind: "cidr" as const, value, source, createdAt: now })),
  ];
}
