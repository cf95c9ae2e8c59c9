// The agent's own state file (versioned). Newer state is refused, never overwritten.
import { promises as fs } from "node:fs";
import { z } from "zod";
import type { NodeLayout } from "./layout.js";
import { ensureDir, writeFileAtomic } from "../util/files.js";

export const STATE_SCHEMA_VERSION = 1;

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
  const raw = JSON.parse(text) as { schemaVersion?: number };
  if ((raw.schemaVersion ?? 0) > STATE_SCHEMA_VERSION) {
    throw new Error(
      `${layout.stateFile} has schema version ${raw.schemaVersion}, newer than this agent understands (${STATE_SCHEMA_VERSION}): ` +
        `it was written by a newer nodecert; run that version instead of downgrading`,
    );
  }
  return AgentState.parse(raw);
}

export async function writeState(layout: NodeLayout, state: AgentState): Promise<void> {
  await ensureDir(layout.stateDir, 0o700);
  await writeFileAtomic(layout.stateFile, JSON.stringify(state, null, 2) + "\n", 0o600);
}
