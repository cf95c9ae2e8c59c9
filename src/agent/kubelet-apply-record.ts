// What verified apply last found per kind, on disk for `nodecert status` (another process).
// Owned by kubelet-apply.ts, which alone writes it.
import { promises as fs } from "node:fs";
import path from "node:path";
import * as z from "zod";
import type { NodeLayout } from "./layout.js";

export const APPLY_OUTCOMES = ["verified", "verified-after-restart", "stale", "unreachable", "not-observable"] as const;
export type ApplyOutcome = (typeof APPLY_OUTCOMES)[number];

export const KubeletApplyRecord = z.partialRecord(
  z.enum(["client", "serving"]),
  z.object({ outcome: z.enum(APPLY_OUTCOMES), serial: z.string(), served: z.string().optional(), restarted: z.boolean(), at: z.string(), detail: z.string() }),
);
export type KubeletApplyRecord = z.infer<typeof KubeletApplyRecord>;

export const applyRecordFile = (layout: NodeLayout) => path.join(layout.stateDir, "kubelet-apply.json");

/** What verified apply last found, for `nodecert status` (undefined when it never ran). */
export async function readApplyRecord(layout: NodeLayout): Promise<KubeletApplyRecord | undefined> {
  try {
    const r = KubeletApplyRecord.safeParse(JSON.parse(await fs.readFile(applyRecordFile(layout), "utf8")));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}

