// Many real agents in one process, for scripts/bench-fleet.ts (the way test/support/fleet.ts runs
// them): each node joins with the real join() (what `nodecert join` does), then runs the real
// daemon (runAgent: renewer, health server, control socket, fleet channel) with a no-op schedule.
// Host facts are not read (one process stands for many hosts). Driven over IPC:
//   join   → joins the given node names with bounded concurrency
//   start  → starts their daemons (bounded concurrency); each dials the channel at once
//   stats  → how many of this process's channels are open
//   stop   → closes every daemon, then exits
// Not a product entry point: run it through bench-fleet.ts.
import { createWriteStream } from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { runAgent, type RunningAgent } from "../src/agent/daemon.js";
import { join } from "../src/agent/join.js";
import { nodeLayout } from "../src/agent/layout.js";
import { nodeIdentity, type Identity } from "../src/agent/identity.js";
import { AgentConfig } from "../src/config/agent.js";
import { createLogger } from "../src/platform/log.js";

export interface AgentsSetup {
  server: string;
  pin: string;
  token: string;
  /** Each node's root is <base>/<name>. */
  base: string;
  names: string[];
  logFile: string;
}

export type AgentsRequest = { seq: number } & ({ type: "join"; setup: AgentsSetup; concurrency: number } | { type: "start"; concurrency: number } | { type: "stats" } | { type: "stop" });

export type AgentsReply =
  | { type: "progress"; phase: "join" | "start"; done: number; of: number }
  | { type: "joined"; seq: number; ms: number }
  | { type: "started"; seq: number; ms: number }
  | { type: "stats"; seq: number; agents: number; connected: number }
  | { type: "stopped"; seq: number }
  | { type: "error"; seq?: number; error: string };

const send = (m: AgentsReply) => process.send?.(m);
if (!process.send) {
  console.error("bench-fleet-agents runs as a child of scripts/bench-fleet.ts (it talks over IPC)");
  process.exit(2);
}

let setup: AgentsSetup | undefined;
let logger: ReturnType<typeof createLogger> | undefined;
const agents: RunningAgent[] = [];

const identityOf = (name: string): Promise<Identity> => nodeIdentity({ nodeName: name, addresses: { includeLoopback: true, includeLinkLocal: false, extra: [], only: ["127.0.0.1"] }, facts: async () => ({}) });

const configOf = (s: AgentsSetup, name: string) =>
  AgentConfig.parse({
    root: path.join(s.base, name),
    server: s.server,
    caCertHash: s.pin,
    nodeName: name,
    addresses: { only: ["127.0.0.1"] },
    healthListen: "127.0.0.1:0",
    hooks: [],
    // Production defaults for the channel (30 s heartbeat, 1 s → 60 s reconnect backoff).
  });

/** Runs `fn` over `items` with at most `limit` at once; reports progress every `every` items. */
async function pool<T>(items: T[], limit: number, fn: (x: T) => Promise<void>, progress: (done: number) => void): Promise<void> {
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < items.length) {
      const x = items[next++];
      await fn(x);
      done++;
      if (done % 25 === 0 || done === items.length) progress(done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

async function joinAll(s: AgentsSetup, concurrency: number): Promise<void> {
  await pool(
    s.names,
    concurrency,
    async (name) => {
      const config = configOf(s, name);
      const log = logger!.child({ node: name });
      // A join that fails (a busy 2-core machine, say) is tried again; the third failure stops the run.
      for (let attempt = 1; ; attempt++) {
        try {
          await join({ server: s.server, token: s.token, caCertHash: s.pin, layout: nodeLayout(config.root), identity: await identityOf(name), keyAlgorithm: config.keyAlgorithm, now: () => new Date(), logger: log });
          return;
        } catch (e) {
          if (attempt >= 3) throw new Error(`${name} could not join after 3 attempts: ${(e as Error).message}`, { cause: e });
          log.warn("join failed; trying again", { attempt, error: (e as Error).message });
        }
      }
    },
    (done) => send({ type: "progress", phase: "join", done, of: s.names.length }),
  );
}

async function startAll(s: AgentsSetup, concurrency: number): Promise<void> {
  await pool(
    s.names,
    concurrency,
    async (name) => {
      agents.push(
        await runAgent({
          config: configOf(s, name),
          logger: logger!.child({ node: name }),
          identity: () => identityOf(name),
          // The bench pushes rotations; no cron schedule runs alongside.
          scheduler: () => ({ stop() {}, execute: async () => undefined }),
        }),
      );
    },
    (done) => send({ type: "progress", phase: "start", done, of: s.names.length }),
  );
}

let stopping = false;
async function stopAll(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await pool(agents.splice(0), 50, (a) => a.close().catch(() => undefined), () => undefined);
}
process.on("disconnect", () => void stopAll().finally(() => process.exit(0)));
process.on("SIGTERM", () => void stopAll().finally(() => process.exit(0)));

process.on("message", (m: AgentsRequest) => {
  void (async () => {
    try {
      const t0 = performance.now();
      if (m.type === "join") {
        setup = m.setup;
        logger = createLogger({ stream: createWriteStream(m.setup.logFile, { flags: "a" }), component: "agent", level: "info" });
        await joinAll(m.setup, m.concurrency);
        send({ type: "joined", seq: m.seq, ms: performance.now() - t0 });
      } else if (m.type === "start") {
        if (!setup) throw new Error("start before join");
        await startAll(setup, m.concurrency);
        send({ type: "started", seq: m.seq, ms: performance.now() - t0 });
      } else if (m.type === "stats") {
        send({ type: "stats", seq: m.seq, agents: agents.length, connected: agents.filter((a) => a.channel?.connected).length });
      } else if (m.type === "stop") {
        await stopAll();
        send({ type: "stopped", seq: m.seq });
        process.disconnect?.();
        process.exit(0);
      }
    } catch (e) {
      send({ type: "error", seq: m.seq, error: (e as Error).message });
    }
  })();
});
