// `nodecert renew` and `nodecert needs-renewal`.
import type { Command } from "commander";
import { uniform } from "../util/random.js";
import { createLogger } from "../log.js";
import { ensureCryptoMode } from "../crypto/fips-exec.js";
import { loadYamlConfig } from "../config/load.js";
import { AgentConfig } from "../config/agent.js";
import { layoutFor } from "../agent/layout.js";
import { configuredIdentity } from "../agent/identity.js";
import { readState } from "../agent/state.js";
import { Renewer, KINDS, type RenewOutcome } from "../agent/renewer.js";
import { AgentMetrics } from "../agent/metrics.js";
import { controlSocketPath } from "../agent/daemon.js";
import { requestRenewal } from "../agent/control.js";
import { recoverOnStartup } from "../agent/recover.js";
import type { CertKind } from "../pki/csr.js";

function loadConfig(o: { config: string; root?: string }): AgentConfig {
  return loadYamlConfig(AgentConfig, o.config, { root: o.root });
}

async function oneShotRenewer(config: AgentConfig): Promise<Renewer> {
  const layout = layoutFor(config);
  const state = await readState(layout);
  const clock = () => new Date();
  return new Renewer({
    config,
    layout,
    logger: createLogger({ component: "renew", stream: process.stderr }),
    clock,
    random: uniform,
    identity: configuredIdentity({ nodeName: () => config.nodeName ?? state?.nodeName, addresses: () => config.addresses, server: async () => config.server ?? state?.server }),
    setTimer: () => ({ cancel() {} }), // one-shot: no retries
    metrics: new AgentMetrics(clock),
  });
}

function report(out: RenewOutcome): void {
  for (const r of out.renewed) process.stdout.write(`renewed ${r.kind}: serial ${r.serial}, valid until ${r.notAfter}\n`);
  for (const s of out.skipped) process.stdout.write(`not renewed ${s.kind}: ${s.reason}\n`);
  if (out.error) {
    process.stderr.write(`error: ${out.error}\n`);
    process.exitCode = 1;
  }
}

export function registerRenew(program: Command): void {
  program
    .command("renew")
    .description("renew now through the running agent (or one-shot when none runs); without --force only what is due")
    .argument("[which]", "client, serving or all", "all")
    .option("--force", "renew even if not due")
    .option("--config <file>", "agent configuration", "/etc/nodecert/agent.yaml")
    .option("--root <dir>", "filesystem root (overrides the config)")
    .action(async (which: string, o: { force?: boolean; config: string; root?: string }) => {
      if (!["client", "serving", "all"].includes(which)) throw new Error(`unknown certificate "${which}": use client, serving or all`);
      const kinds: CertKind[] = which === "all" ? KINDS : [which as CertKind];
      const config = loadConfig(o);
      // A one-shot renewal generates keys: on the provider the agent would use.
      await ensureCryptoMode(config.fips, { providerDir: config.fipsProviderDir });
      const layout = layoutFor(config);
      const viaAgent = await requestRenewal(controlSocketPath(config, layout), kinds, !!o.force);
      if (viaAgent) return report(viaAgent);
      process.stderr.write("no agent is running; renewing one-shot\n");
      await recoverOnStartup(layout, new Date());
      report(await (await oneShotRenewer(config)).renew(kinds, { force: !!o.force }));
    });

  program
    .command("needs-renewal")
    .description("exit 0 when a renewal is due, 1 when not, 2 when a certificate is missing or cannot be read")
    .option("--config <file>", "agent configuration", "/etc/nodecert/agent.yaml")
    .option("--root <dir>", "filesystem root (overrides the config)")
    .action(async (o: { config: string; root?: string }) => {
      const decisions = await (await oneShotRenewer(loadConfig(o))).evaluate(false);
      for (const x of decisions) process.stdout.write(`${x.kind}: ${x.action}: ${x.reason}\n`);
      if (decisions.some((x) => x.code === "missing" || x.code === "unreadable")) process.exitCode = 2;
      else process.exitCode = decisions.some((x) => x.action !== "ok") ? 0 : 1;
    });
}
