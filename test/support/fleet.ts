// Many real agents in one process against a real server, for channel and campaign tests.
import path from "node:path";
import { runAgent, type RunningAgent } from "../../src/agent/daemon.js";
import { AgentConfig } from "../../src/config/agent.js";
import { nodeIdentity } from "../../src/agent/identity.js";
import { writeFileAtomic } from "../../src/platform/files.js";
import { captureLogger, startServer, tempDir, type FakeClock, type TestServer } from "./helpers.js";
import type { Logger } from "../../src/platform/log.js";

export interface FleetAgent {
  name: string;
  root: string;
  agent: RunningAgent;
  lines: string[];
}

export async function startFleetAgent(server: { url: string; pin: string; createToken: TestServer["createToken"] }, name: string, o: { clock?: FakeClock; logger?: Logger; heartbeat?: string; /** Several control-plane URLs (replicas), tried in turn. */ servers?: string[] } = {}): Promise<FleetAgent> {
  const root = path.join(tempDir(), name);
  const tokenFile = path.join(root, "token");
  await writeFileAtomic(tokenFile, (await server.createToken()) + "\n").catch(async () => {
    const { mkdirSync } = await import("node:fs");
    mkdirSync(root, { recursive: true });
    await writeFileAtomic(tokenFile, (await server.createToken()) + "\n");
  });
  const config = AgentConfig.parse({
    root,
    server: o.servers ?? server.url,
    caCertHash: server.pin,
    tokenFile,
    nodeName: name,
    addresses: { only: ["127.0.0.1"] },
    healthListen: "127.0.0.1:0",
    hooks: [],
    channel: { heartbeat: o.heartbeat ?? "30s", reconnectInitial: "50ms", reconnectMax: "500ms" },
  });
  const cap = captureLogger(name);
  const agent = await runAgent({
    config,
    logger: o.logger ?? cap.logger,
    clock: o.clock?.now,
    identity: () => nodeIdentity({ nodeName: name, addresses: { includeLoopback: true, includeLinkLocal: false, extra: [], only: ["127.0.0.1"] }, facts: async () => ({}) }),
    scheduler: () => ({ stop() {}, execute: async () => undefined }),
  });
  await agent.joined;
  return { name, root, agent, lines: cap.lines };
}

/** Polls `check` until it returns a truthy value, or fails after `ms` with `what`. */
export async function until<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function fleetServer(o: { dir?: string; listen?: string; clock?: FakeClock; heartbeatMs?: number } = {}): Promise<TestServer> {
  return startServer({ ...o });
}
