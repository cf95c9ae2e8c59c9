// Applies a verified set of certificates to the node. A plan is first written to the state
// directory, so a crash at any step is finished on the next start instead of losing keys.
import { promises as fs } from "node:fs";
import path from "node:path";
import type { CertKind } from "../pki/csr.js";
import type { NodeLayout } from "./layout.js";
import { certificateInfo } from "../pki/certificate-info.js";
import { ensureNodeDirs, installKubeconfig, installPair, installTrustBundle, readCurrent } from "./install.js";
import { readState, writeState, STATE_SCHEMA_VERSION, type AgentState } from "./state.js";
import { writeFileAtomic } from "../platform/files.js";

export interface InstallPlan {
  nodeName: string;
  server: string;
  caPin: string;
  apiServer: string;
  caBundle: string;
  pairs: Partial<Record<CertKind, { chainPem: string; keyPem: string }>>;
  at: string;
  /** A (re-)join: the node starts over, so a recorded eviction no longer applies. */
  joined?: boolean;
}

export function pendingFile(layout: NodeLayout): string {
  return path.join(layout.stateDir, "pending-install.json");
}

const pairContent = (p: { chainPem: string; keyPem: string }) => p.chainPem.trimEnd() + "\n" + p.keyPem.trimEnd() + "\n";

export async function applyInstall(layout: NodeLayout, plan: InstallPlan, now: Date): Promise<AgentState> {
  await ensureNodeDirs(layout);
  await writeFileAtomic(pendingFile(layout), JSON.stringify(plan), 0o600);
  return finishInstall(layout, plan, now);
}

async function finishInstall(layout: NodeLayout, plan: InstallPlan, now: Date): Promise<AgentState> {
  await ensureNodeDirs(layout);
  await installTrustBundle(layout, plan.caBundle);
  const prev = await readState(layout);
  const certificates: AgentState["certificates"] = { ...(prev?.certificates ?? {}) };
  for (const kind of ["client", "serving"] as const) {
    const pair = plan.pairs[kind];
    if (!pair) continue;
    let file: string;
    // Idempotent on recovery: skip a pair that is already current.
    if ((await readCurrent(layout, kind)) !== pairContent(pair)) {
      file = await installPair(layout, kind, pair.chainPem, pair.keyPem, now);
    } else {
      file = path.join(layout.pkiDir, await fs.readlink(layout.current(kind)));
    }
    const info = certificateInfo(pair.chainPem);
    certificates[kind] = { serial: info.serial, notAfter: info.notAfter.toISOString(), file, installedAt: now.toISOString() };
  }
  await installKubeconfig(layout, plan.apiServer);
  const state: AgentState = {
    ...(prev ?? {}),
    schemaVersion: STATE_SCHEMA_VERSION,
    nodeName: plan.nodeName,
    server: plan.server,
    caPin: plan.caPin,
    apiServer: plan.apiServer,
    joinedAt: plan.joined ? plan.at : (prev?.joinedAt ?? plan.at),
    certificates,
  };
  if (plan.joined) delete state.evicted;
  await writeState(layout, state);
  await fs.rm(pendingFile(layout), { force: true });
  return state;
}

/** Finishes an install interrupted by a crash. Returns true when there was one. */
export async function recoverPendingInstall(layout: NodeLayout, now: Date): Promise<boolean> {
  let text: string;
  try {
    text = await fs.readFile(pendingFile(layout), "utf8");
  } catch {
    return false;
  }
  let plan: InstallPlan;
  try {
    plan = JSON.parse(text) as InstallPlan;
  } catch {
    // A torn plan cannot exist (it is written atomically); a corrupt one is set aside, not trusted.
    await fs.rename(pendingFile(layout), pendingFile(layout) + ".corrupt");
    return false;
  }
  await finishInstall(layout, plan, now);
  return true;
}
