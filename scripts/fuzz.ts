// The long fuzz run (docs/BENCHMARKS.md): mutated join bodies and channel frames against a real
// `nodecert server run` process, and fuzzed control-plane frames against a real agent. Fails (exit
// 1) on any answer of 500 or above, a 4xx without a reason, a hang, a frame whose close code is not
// what the protocol says, an error line in the server's log, or a server that died.
//
//   node --import tsx scripts/fuzz.ts [--join 80000] [--channel 20000] [--agent 2000] [--seed N]
import { readFileSync } from "node:fs";
import path from "node:path";
import https from "node:https";
import { parseArgs } from "node:util";
import { fuzzAgentChannel, fuzzJoin, fuzzServerChannel } from "./fuzz-cases.js";
import { commandLine, readProcStatus } from "./proc-stats.js";
import { serverProcess } from "../test/support/server-process.js";
import { joinRaw, nodeFacts } from "../test/support/node-client.js";
import { cleanupTemps, quietLogger, tempDir } from "../test/support/helpers.js";
import { createNodeCsr } from "../src/pki/csr.js";
import { generateKeyPair } from "../src/pki/keys.js";
import { runAgent } from "../src/agent/daemon.js";
import { AgentConfig } from "../src/config/agent.js";
import { nodeIdentity } from "../src/agent/identity.js";
import { join } from "../src/agent/join.js";
import { nodeLayout } from "../src/agent/layout.js";
import { serverPaths } from "../src/server/paths.js";

const { values } = parseArgs({ options: { join: { type: "string", default: "80000" }, channel: { type: "string", default: "20000" }, agent: { type: "string", default: "2000" }, seed: { type: "string" } } });
const seed = Number(values.seed ?? Date.now() % 2 ** 31);
const counts = { join: Number(values.join), channel: Number(values.channel), agent: Number(values.agent) };

function healthz(url: string, ca: string): Promise<number> {
  return new Promise((resolve) => {
    https.get(`${url}/healthz`, { ca, minVersion: "TLSv1.3", agent: false }, (res) => (res.resume(), res.on("end", () => resolve(res.statusCode ?? 0)))).on("error", () => resolve(0));
  });
}

const problems: string[] = [];
const started = new Date();
console.log(`# ${commandLine()}`);
console.log(`seed ${seed}, started ${started.toISOString()}`);
const server = await serverProcess({ config: { tokens: { maxFailures: 1_000_000, failureWindow: "1m" }, channel: { messageBurst: 1_000_000, messageRate: 1_000_000 } } });
await server.start();
const ca = server.trustBundle();
const view = { url: server.url, port: server.port, authority: { trustBundle: ca } };
const rss0 = readProcStatus(server.pid()).rssKiB;

// Join bodies.
const name = "fuzz-node";
const keys = await generateKeyPair("ECDSA-P256");
const base = {
  v: 1,
  nodeName: name,
  facts: { ...nodeFacts(name), names: [name] },
  csrs: { client: await createNodeCsr({ kind: "client", nodeName: name, keys }), serving: await createNodeCsr({ kind: "serving", nodeName: name, keys, sans: [name, "127.0.0.1"] }) },
};
const j = await fuzzJoin({ url: server.url, ca, token: await server.createToken({ uses: 10_000_000 }), base, cases: counts.join, seed });
console.log(`join: ${j.cases} bodies in ${(j.ms / 1000).toFixed(1)} s (${((j.cases / j.ms) * 1000).toFixed(0)}/s): ${JSON.stringify(j.byStatus)}, ${j.failures.length} failures, ${j.hangs} hangs`);
for (const f of j.failures.slice(0, 10)) problems.push(`join: ${f.status} for (${f.what}): ${f.answer}`);

// Channel frames from a node.
const cred = (await joinRaw(view, "fuzz-ch-1", await server.createToken())).credential!;
const c = await fuzzServerChannel({ url: server.url, ca, pem: cred.pem, nodeName: "fuzz-ch-1", frames: counts.channel, seed });
console.log(`channel (node → server): ${c.frames} frames in ${(c.ms / 1000).toFixed(1)} s over ${c.connections} connections: ${c.accepted} accepted, closed ${JSON.stringify(c.closed)}, ${c.mismatches.length} mismatches`);
for (const m of c.mismatches.slice(0, 10)) problems.push(`channel: ${m}`);

// Control-plane frames to a real agent.
const root = path.join(tempDir(), "agent");
const identity = () => nodeIdentity({ nodeName: "fuzz-agent-1", addresses: { includeLoopback: true, includeLinkLocal: false, extra: [], only: ["127.0.0.1"] }, facts: async () => ({}) });
await join({ server: server.url, token: await server.createToken(), caCertHash: server.pin, layout: nodeLayout(root), identity: await identity(), keyAlgorithm: "ECDSA-P256", now: () => new Date(), logger: quietLogger() });
const paths = serverPaths(server.dir);
const a = await fuzzAgentChannel({
  tls: { cert: readFileSync(paths.tlsCert, "utf8"), key: readFileSync(paths.tlsKey, "utf8") },
  frames: counts.agent,
  seed,
  startAgent: (url) =>
    runAgent({
      config: AgentConfig.parse({ root, server: url, caCertHash: server.pin, nodeName: "fuzz-agent-1", addresses: { only: ["127.0.0.1"] }, healthListen: "127.0.0.1:0", hooks: [], backoff: { initial: "1h", max: "1h" }, channel: { reconnectInitial: "20ms", reconnectMax: "100ms" } }),
      logger: quietLogger(),
      identity,
      scheduler: () => ({ stop() {}, execute: async () => undefined }),
    }),
});
console.log(`channel (control plane → agent): ${a.frames} frames in ${(a.ms / 1000).toFixed(1)} s: ${a.accepted} accepted, closed ${JSON.stringify(a.closed)}, ${a.mismatches.length} mismatches`);
for (const m of a.mismatches.slice(0, 10)) problems.push(`agent: ${m}`);

// The server is alive, answered nothing with an internal error and logged none.
const health = await healthz(server.url, ca);
if (health !== 200) problems.push(`/healthz answered ${health} after the run`);
const rss1 = readProcStatus(server.pid()).rssKiB;
const errors = server.logs().split("\n").filter((l) => /"level":"error"/.test(l));
for (const e of errors.slice(0, 10)) problems.push(`server log: ${e.slice(0, 300)}`);
await server.stop();
cleanupTemps();
const total = j.cases + c.frames + a.frames;
console.log(`total ${total} cases in ${((Date.now() - started.getTime()) / 1000).toFixed(0)} s; server RSS ${(rss0 / 1024).toFixed(1)} → ${(rss1 / 1024).toFixed(1)} MiB; server error lines ${errors.length}; /healthz after ${health}`);
if (problems.length) {
  console.log(`FAILED (${problems.length}):\n${problems.join("\n")}`);
  process.exit(1);
}
console.log("OK: 0 crashes, 0 5xx, 0 hangs, 0 channel mismatches, 0 internal errors");
process.exit(0);
