// `nodecert rotate` (admin, mTLS): start a rotation campaign.
import type { CliEnv } from "./env.js";
import { adminGet, adminRequest } from "./admin-client.js";
import { parseKeyAlgorithm } from "../pki/key-algorithms.js";
import type { CampaignStatus } from "../server/fleet/campaigns.js";

export interface RotateOptions {
  dir: string;
  server?: string;
  node?: string[];
  all?: boolean;
  maxInFlight: string;
  keyAlgorithm?: string;
  which: string;
  reason: string;
  wait?: boolean;
  timeout?: string;
  interval?: string;
}

export async function rotate(env: CliEnv, o: RotateOptions): Promise<void> {
  if (!!o.all === !!o.node?.length) throw new Error("give --node NAME ... or --all");
  const which = o.which === "all" ? ["client", "serving"] : [o.which];
  const s = (await adminRequest(o.dir, "/v1/admin/campaigns", { nodes: o.node, all: !!o.all, maxInFlight: Number(o.maxInFlight), keyAlgorithm: o.keyAlgorithm ? parseKeyAlgorithm(o.keyAlgorithm) : undefined, which, reason: o.reason }, o.server)) as CampaignStatus;
  env.stdout.write(`started campaign ${s.campaign.id} for ${s.nodes.length} node(s); watch it with: nodecert rotations ${s.campaign.id}\n`);
  if (o.wait) {
    const [{ waitWithProgress }, { campaignProgress }, { parseDuration }] = await Promise.all([import("./wait-progress.js"), import("./rotate-wait.js"), import("../config/duration.js")]);
    await waitWithProgress(env, `campaign ${s.campaign.id}`, async () => campaignProgress((await adminGet(o.dir, `/v1/admin/campaigns/${s.campaign.id}`, o.server)) as CampaignStatus), {
      intervalMs: parseDuration(o.interval ?? "1s"),
      timeoutMs: o.timeout ? parseDuration(o.timeout) : undefined,
    });
  }
}
