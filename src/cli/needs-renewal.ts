// `nodecert needs-renewal`: exit 0 when a renewal is due, 1 when not, 2 when a certificate is missing.
import type { CliEnv } from "./env.js";
import { CANNOT_READ } from "../agent/decision.js";
import { loadAgentConfig, oneShotRenewer } from "./one-shot.js";

export interface NeedsRenewalOptions {
  config: string;
  root?: string;
}

export async function needsRenewal(env: CliEnv, o: NeedsRenewalOptions): Promise<void> {
  const decisions = await (await oneShotRenewer(env, loadAgentConfig(o))).evaluate(false);
  for (const x of decisions) env.stdout.write(`${x.kind}: ${x.action}: ${x.reason}\n`);
  if (decisions.some((x) => x.code === "missing" || CANNOT_READ.includes(x.code))) env.exitCode = 2;
  else env.exitCode = decisions.some((x) => x.action !== "ok") ? 0 : 1;
}
