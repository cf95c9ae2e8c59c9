// `nodecert agent`: the node daemon. Loads state, joins when it has no certificates and a
// token is configured, serves /healthz. Renewal and the push channel plug in here later.
import { promises as fs } from "node:fs";
import type { AgentConfig } from "../config/agent.js";
import type { Logger } from "../log.js";
import { nodeLayout, type NodeLayout } from "./layout.js";
import { nodeIdentity, type HostFacts } from "./identity.js";
import { readState, type AgentState } from "./state.js";
import { recoverPendingInstall } from "./apply.js";
import { join } from "./join.js";
import { startHealthServer } from "./health.js";
import { backoffDelay } from "./backoff.js";

export interface AgentDeps {
  config: AgentConfig;
  logger: Logger;
  clock?: () => Date;
  hostFacts?: () => Promise<HostFacts>;
  /** Schedules a retry; injected so tests do not wait. */
  setTimer?: (fn: () => void, ms: number) => { cancel(): void };
}

export interface RunningAgent {
  layout: NodeLayout;
  healthPort: number;
  state(): AgentState | undefined;
  /** Resolves when the node holds certificates (immediately if it already did). */
  joined: Promise<AgentState>;
  close(): Promise<void>;
}

export async function runAgent(d: AgentDeps): Promise<RunningAgent> {
  const clock = d.clock ?? (() => new Date());
  const setTimer = d.setTimer ?? ((fn, ms) => { const t = setTimeout(fn, ms); return { cancel: () => clearTimeout(t) }; });
  const layout = nodeLayout(d.config.root);
  const log = d.logger;
  if (await recoverPendingInstall(layout, clock())) log.warn("finished an install interrupted by a restart", { root: layout.root });
  let state = await readState(layout);
  let closed = false;
  let timer: { cancel(): void } | undefined;
  let resolveJoined!: (s: AgentState) => void;
  const joined = new Promise<AgentState>((r) => (resolveJoined = r));

  const health = await startHealthServer(d.config.healthListen, { joined: () => state !== undefined });

  const tryJoin = async (attempt: number): Promise<void> => {
    if (closed) return;
    const c = d.config;
    try {
      const token = (await fs.readFile(c.tokenFile!, "utf8")).trim();
      const identity = await nodeIdentity({ nodeName: c.nodeName, addresses: c.addresses, facts: d.hostFacts });
      state = await join({ server: c.server!, token, caCertHash: c.caCertHash!, layout, identity, keyAlgorithm: c.keyAlgorithm, now: clock, logger: log });
      resolveJoined(state);
    } catch (e) {
      const delay = backoffDelay(attempt, { baseMs: 2000, capMs: 300_000 });
      log.error("join failed; will retry", { error: (e as Error).message, attempt: attempt + 1, retryInMs: delay });
      timer = setTimer(() => void tryJoin(attempt + 1), delay);
    }
  };

  if (state) {
    log.info("agent started", { node: state.nodeName, root: layout.root, clientSerial: state.certificates.client?.serial });
    resolveJoined(state);
  } else if (d.config.tokenFile && d.config.server && d.config.caCertHash) {
    log.info("node has no certificates; joining", { server: d.config.server, root: layout.root });
    void tryJoin(0);
  } else {
    log.warn("node has no certificates and no join configuration: set server, caCertHash and tokenFile in agent.yaml, or run 'nodecert join'", { root: layout.root });
  }

  return {
    layout,
    healthPort: health.port,
    state: () => state,
    joined,
    async close() {
      closed = true;
      timer?.cancel();
      await health.app.close();
    },
  };
}
