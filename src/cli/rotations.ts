// `nodecert rotations [ID]` (admin, mTLS): campaigns and their per-node progress.
import type { CliEnv } from "./env.js";
import { adminGet, adminRequest } from "./admin-client.js";
import { table } from "./table.js";
import { escapeTerminal, terminalJson } from "../platform/text.js";
import type { CampaignStatus } from "../server/fleet/campaigns.js";

export interface RotationsOptions {
  dir: string;
  server?: string;
  output: string;
  cancel?: boolean;
}

function campaignTable(s: CampaignStatus): string {
  const c = s.campaign;
  return (
    `CAMPAIGN ${c.id}  ${c.state}  max in flight ${c.maxInFlight}  ${c.which.join("+")}${c.keyAlgorithm ? ` → ${c.keyAlgorithm}` : ""}  reason: ${escapeTerminal(c.reason)}\n` +
    `  done ${s.counts.done}, in flight ${s.counts["in-flight"]}, pending ${s.counts.pending}, failed ${s.counts.failed}\n` +
    table(
      ["NODE", "STATE", "ATTEMPTS", "DETAIL"],
      s.nodes.map((n) => [n.node, n.state, String(n.attempts), n.state === "done" ? `client ${n.serials?.client ?? "-"} serving ${n.serials?.serving ?? "-"}` : (n.lastError ?? "")]),
    )
  );
}

export async function rotations(env: CliEnv, id: string | undefined, o: RotationsOptions): Promise<void> {
  if (o.cancel) {
    if (!id) throw new Error("--cancel needs the campaign id: nodecert rotations <id> --cancel ('nodecert rotations' lists them)");
    const s = (await adminRequest(o.dir, `/v1/admin/campaigns/${encodeURIComponent(id)}/cancel`, {}, o.server)) as CampaignStatus;
    if (o.output === "json") return void env.stdout.write(terminalJson(s) + "\n");
    return void env.stdout.write(campaignTable(s));
  }
  const body = id ? [(await adminGet(o.dir, `/v1/admin/campaigns/${encodeURIComponent(id)}`, o.server)) as CampaignStatus] : ((await adminGet(o.dir, "/v1/admin/campaigns", o.server)) as { campaigns: CampaignStatus[] }).campaigns;
  if (o.output === "json") return void env.stdout.write(terminalJson(id ? body[0] : { campaigns: body }) + "\n");
  env.stdout.write(body.length ? body.map(campaignTable).join("\n") : "no campaigns\n");
}
