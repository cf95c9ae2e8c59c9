// The running agent's crypto report on disk, so `nodecert status` (another process, perhaps not
// on the FIPS provider itself) can say which provider the agent runs on and whether it self-tested.
import { promises as fs } from "node:fs";
import * as z from "zod";
import type { CryptoReport } from "../crypto/fips-exec.js";
import { describeSelfTest } from "../crypto/self-test.js";
import type { NodeLayout } from "./layout.js";
import { ensureDir, writeFileAtomic } from "../platform/files.js";

export const CryptoRecord = z.object({
  recordedAt: z.string(),
  /** Which command recorded it: the agent daemon or a one-off join/renew. */
  by: z.string(),
  pid: z.number().int(),
  mode: z.enum(["auto", "on", "off"]),
  fips: z.boolean(),
  reason: z.string(),
  openssl: z.string(),
  provider: z.object({ name: z.string(), version: z.string().optional(), module: z.string().optional(), config: z.string().optional(), source: z.string().optional() }),
  hostFips: z.object({ enabled: z.boolean(), reason: z.string() }),
  selfTest: z.object({ ok: z.boolean(), summary: z.string(), durationMs: z.number() }),
});
export type CryptoRecord = z.infer<typeof CryptoRecord>;

export function cryptoRecord(r: CryptoReport, now: Date, by: string): CryptoRecord {
  return {
    recordedAt: now.toISOString(),
    by,
    pid: process.pid,
    mode: r.mode,
    fips: r.fips,
    reason: r.reason,
    openssl: r.openssl,
    provider: r.provider,
    hostFips: { enabled: r.host.enabled, reason: r.host.reason },
    selfTest: { ok: r.selfTest.ok, summary: describeSelfTest(r.selfTest), durationMs: r.selfTest.durationMs },
  };
}

export async function writeCryptoRecord(layout: NodeLayout, r: CryptoReport, now: Date, by = "agent"): Promise<void> {
  await ensureDir(layout.stateDir, 0o700);
  await writeFileAtomic(layout.cryptoFile, JSON.stringify(cryptoRecord(r, now, by), null, 2) + "\n", 0o600);
}

/** The record, or undefined when no agent has written one (or it does not parse). */
export async function readCryptoRecord(layout: NodeLayout): Promise<CryptoRecord | undefined> {
  const text = await fs.readFile(layout.cryptoFile, "utf8").catch(() => undefined);
  if (!text) return undefined;
  try {
    const r = CryptoRecord.safeParse(JSON.parse(text));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}
