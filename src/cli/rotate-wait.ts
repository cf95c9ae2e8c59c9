// Progress of a rotation campaign and of a CA rotation, for `--wait` (see wait-progress).
import type { CampaignStatus } from "../server/fleet/campaigns.js";
import type { CaRotationStatus } from "../server/fleet/ca-rotation.js";
import type { Progress } from "./wait-progress.js";

export function campaignProgress(s: CampaignStatus): Progress {
  const c = s.counts;
  const total = c.pending + c["in-flight"] + c.done + c.failed;
  const detail = `nodes: ${c.done} done, ${c.failed} failed, ${c["in-flight"]} in flight, ${c.pending} pending`;
  const outcome = s.campaign.state === "cancelled" ? "cancelled" : s.campaign.state === "done" ? (c.failed > 0 ? "failed" : "done") : undefined;
  return { done: c.done + c.failed, total, detail, outcome };
}

const PHASES = ["prepare", "switch", "finishing", "done"] as const;

/** `id`: the rotation this command started (a later one is not ours to wait for). */
export function caRotationProgress(s: CaRotationStatus, id: string | undefined): Progress {
  const r = s.rotation;
  if (!r || (id && r.id !== id)) return { done: 0, total: PHASES.length - 1, detail: "the rotation is no longer the current one", outcome: "cancelled" };
  const step = PHASES.indexOf(r.phase);
  const blockers = s.blockers.length ? `; blocked by ${s.blockers.length}: ${s.blockers.slice(0, 3).join("; ")}${s.blockers.length > 3 ? "; …" : ""}` : "";
  return { done: step, total: PHASES.length - 1, detail: `phase ${r.phase}${blockers}`, outcome: r.phase === "done" ? "done" : undefined };
}
