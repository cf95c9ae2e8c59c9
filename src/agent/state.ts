// The agent's own state file (versioned). Newer state is refused, never overwritten.
import { promises as fs } from "node:fs";
import * as z from "zod";
import type { NodeLayout } from "./layout.js";
import { ensureDir, writeFileAtomic } from "../platform/files.js";

import { migrateState, STATE_SCHEMA_VERSION } from "./state-migrations.js";
export { STATE_SCHEMA_VERSION };

const CertState = z.object({
  serial: z.string(),
  notAfter: z.string(),
  file: z.string(),
  installedAt: z.string(),
  /** The renewal deadline drawn for this serial, persisted so restarts do not re-roll it. */
  renewAt: z.string().optional(),
});

export const AgentState = z.object({
  schemaVersion: z.number().int(),
  nodeName: z.string(),
  server: z.string(),
  caPin: z.string(),
  apiServer: z.string(),
  joinedAt: z.string(),
  certificates: z.object({ client: CertState.optional(), serving: CertState.optional() }),
  lastSuccess: z.string().optional(),
  /** Set by a rotate command that asked for another key algorithm; wins over the config. */
  keyAlgorithm: z.string().optional(),
  /** Set when the control plane evicted this node. */
  evicted: z.object({ at: z.string(), reason: z.string() }).optional(),
  lastError: z.object({ at: z.string(), message: z.string() }).optional(),
});
export type AgentState = z.infer<typeof AgentState>;

export async function readState(layout: NodeLayout): Promise<AgentState | undefined> {
  let text: string;
  try {
    text = await fs.readFile(layout.stateFile, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
  const parsed = parseStateText(text, layout.stateFile);
  if ("problem" in parsed) throw new DamagedStateError(layout.stateFile, parsed.problem);
  return parsed.state;
}

/** state.json exists but cannot be used: the message names the file and the fix. */
export class DamagedStateError extends Error {
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file} is damaged (${problem}): restart the agent to rebuild it from the installed certificates, or move it aside and run 'nodecert join'`);
  }
}

/** Parses state.json's text; a newer schema still throws (it is refused, never repaired). */
export function parseStateText(text: string, file: string): { state: AgentState; raw: Record<string, unknown> } | { problem: string; raw?: Record<string, unknown> } {
  if (!text.trim()) return { problem: "the file is empty: a write was cut short" };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return { problem: `not valid JSON, truncated or overwritten: ${(e as Error).message}` };
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return { problem: "not a JSON object" };
  const { state } = migrateState(raw as Record<string, unknown>, file);
  const checked = AgentState.safeParse(state);
  if (!checked.success) {
    const issues = checked.error.issues.slice(0, 3).map((i) => `${i.path.join(".") || "(top)"}: ${i.message}`);
    return { problem: `does not match the state schema: ${issues.join("; ")}`, raw: raw as Record<string, unknown> };
  }
  return { state: checked.data, raw: raw as Record<string, unknown> };
}

/**
 * Migrates the state file on disk (post-refresh, or on start): keeps a copy of the old file as
 * state.json.v<old>.bak, then writes the migrated state. Returns what was applied.
 */
export async function migrateStateFile(layout: NodeLayout): Promise<string[]> {
  let text: string;
  try {
    text = await fs.readFile(layout.stateFile, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
  const raw = JSON.parse(text) as Record<string, unknown>;
  const { state, applied } = migrateState(raw, layout.stateFile);
  if (!applied.length) return [];
  await writeFileAtomic(`${layout.stateFile}.v${raw.schemaVersion ?? 1}.bak`, text, 0o600);
  await writeState(layout, AgentState.parse(state));
  return applied;
}

export async function writeState(layout: NodeLayout, state: AgentState): Promise<void> {
  await ensureDir(layout.stateDir, 0o700);
  await writeFileAtomic(layout.stateFile, JSON.stringify(state, null, 2) + "\n", 0o600);
}

export interface LastError {
  at: string;
  message: string;
}

/**
 * The last error, also before the first join (no state yet): a join the control plane refused
 * (a SAN rule, say) must show in `nodecert status`, not only in the log.
 */
export async function recordLastError(layout: NodeLayout, e: LastError): Promise<void> {
  const s = await readState(layout).catch(() => undefined);
  if (s) return writeState(layout, { ...s, lastError: e });
  await ensureDir(layout.stateDir, 0o700);
  await writeFileAtomic(layout.joinErrorFile, JSON.stringify(e) + "\n", 0o600);
}

export async function readLastError(layout: NodeLayout): Promise<LastError | undefined> {
  const s = await readState(layout).catch(() => undefined);
  if (s) return s.lastError;
  try {
    const e = JSON.parse(await fs.readFile(layout.joinErrorFile, "utf8")) as LastError;
    return typeof e.at === "string" && typeof e.message === "string" ? e : undefined;
  } catch {
    return undefined;
  }
}

/** After a join: the error from before it no longer applies. */
export async function clearJoinError(layout: NodeLayout): Promise<void> {
  await fs.rm(layout.joinErrorFile, { force: true });
}
