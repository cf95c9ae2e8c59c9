// A Renewer for one command (`renew` without a running agent, `needs-renewal`): no schedule, no
// retries, metrics kept in memory only.
import { serverFor } from "../agent/servers.js";
import { uniform } from "../platform/random.js";
import { createLogger } from "../platform/log.js";
import { loadYamlConfig } from "../config/load.js";
import { AgentConfig } from "../config/agent.js";
import { layoutFor } from "../agent/layout.js";
import { configuredIdentity } from "../agent/identity.js";
import { NodeStore } from "../agent/node-store.js";
import { Renewer } from "../agent/renewer.js";
import { AgentMetrics } from "../agent/metrics.js";
import type { CliEnv } from "./env.js";

export function loadAgentConfig(o: { config: string; root?: string }): AgentConfig {
  return loadYamlConfig(AgentConfig, o.config, { root: o.root });
}

export async function oneShotRenewer(env: CliEnv, config: AgentConfig): Promise<Renewer> {
  const layout = layoutFor(config);
  const logger = createLogger({ component: "renew", stream: env.stderr });
  const store = new NodeStore(layout, { what: "nodecert renew", logger });
  const state = await store.read();
  const clock = () => env.now();
  return new Renewer({
    config,
    layout,
    store,
    logger,
    clock,
    random: uniform,
    identity: configuredIdentity({ nodeName: () => config.nodeName ?? state?.nodeName, addresses: () => config.addresses, server: async () => serverFor(config.server ?? state?.server) }),
    setTimer: () => ({ cancel() {} }), // one-shot: no retries
    metrics: new AgentMetrics(clock),
  });
}
