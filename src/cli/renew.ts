// `nodecert renew`: through the running agent's control socket, or one-shot when none runs.
import type { CliEnv } from "./env.js";
import { ensureCryptoMode } from "../crypto/fips-exec.js";
import { controlSocketPath, layoutFor } from "../agent/layout.js";
import { KINDS, type RenewOutcome } from "../agent/renewer.js";
import { requestRenewal } from "../agent/http/control.js";
import { NodeStore } from "../agent/node-store.js";
import type { CertKind } from "../pki/csr.js";
import { loadAgentConfig, oneShotRenewer } from "./one-shot.js";

export interface RenewOptions {
  force?: boolean;
  config: string;
  root?: string;
}

function report(env: CliEnv, out: RenewOutcome): void {
  for (const r of out.renewed) env.stdout.write(`renewed ${r.kind}: serial ${r.serial}, valid until ${r.notAfter}\n`);
  for (const s of out.skipped) env.stdout.write(`not renewed ${s.kind}: ${s.reason}\n`);
  if (out.error) {
    env.stderr.write(`error: ${out.error}\n`);
    env.exitCode = 1;
  }
}

export async function renew(env: CliEnv, which: string, o: RenewOptions): Promise<void> {
  if (!["client", "serving", "all"].includes(which)) throw new Error(`unknown certificate "${which}": use client, serving or all`);
  const kinds: CertKind[] = which === "all" ? KINDS : [which as CertKind];
  const config = loadAgentConfig(o);
  // A one-shot renewal generates keys: on the provider the agent would use.
  await ensureCryptoMode(config.fips, { providerDir: config.fipsProviderDir });
  const layout = layoutFor(config);
  const viaAgent = await requestRenewal(controlSocketPath(config, layout), kinds, !!o.force);
  if (viaAgent) return report(env, viaAgent);
  env.stderr.write("no agent is running; renewing one-shot\n");
  // The agent may be starting or stopping (no socket): the store's lock keeps the two apart.
  await new NodeStore(layout, { what: "nodecert renew" }).recover(env.now());
  report(env, await (await oneShotRenewer(env, config)).renew(kinds, { force: !!o.force }));
}
