// Benchmark: wall time of a join (token in hand → certificates installed), ECDSA P-256 vs RSA-2048,
// in-process (the join() function) and as a new process (bin/nodecert join). Loopback only.
// Usage: node --import tsx scripts/bench-join.ts [--runs N] [--process-runs N]
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { initServer } from "../src/server/init.js";
import { runServer } from "../src/server/run.js";
import { generateToken, hashSecret, parseToken } from "../src/server/tokens.js";
import { join } from "../src/agent/join.js";
import { nodeLayout } from "../src/agent/layout.js";
import { nodeIdentity } from "../src/agent/identity.js";
import type { KeyAlgorithm } from "../src/pki/keys.js";
import { silentLogger } from "../src/platform/log.js";

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const RUNS = arg("--runs", 30);
const PROC_RUNS = arg("--process-runs", 8);
const quiet = silentLogger();
const random = (n: number) => randomBytes(n);

const tmp = mkdtempSync(path.join(os.tmpdir(), "nodecert-bench-"));
const init = await initServer({ dir: path.join(tmp, "server"), listen: "127.0.0.1:0", allowLoopbackSans: true, now: new Date(), random });
const server = await runServer({ dir: path.join(tmp, "server"), logger: quiet, configOverrides: { tokens: { maxFailures: 100000, failureWindow: "1m" } } });

async function token(): Promise<string> {
  const t = generateToken(random);
  const { id, secret } = parseToken(t)!;
  await server.store.insertToken({ id, secretHash: hashSecret(secret), usesLeft: 1, expiresAt: new Date(Date.now() + 3600_000), createdAt: new Date() });
  return t;
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { n: s.length, min: s[0], median: q(0.5), p90: q(0.9), max: s[s.length - 1] };
};
const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

const results: Record<string, ReturnType<typeof stats>> = {};
let i = 0;
for (const alg of ["ECDSA-P256", "RSA-2048"] as KeyAlgorithm[]) {
  const times: number[] = [];
  for (let r = 0; r < RUNS + 2; r++) {
    const t = await token();
    const name = `bench-${i++}`;
    const layout = nodeLayout(path.join(tmp, name));
    const identity = await nodeIdentity({ nodeName: name, addresses: { includeLoopback: true, includeLinkLocal: false, extra: [], only: ["127.0.0.1"] }, facts: async () => ({}) });
    const t0 = performance.now();
    await join({ server: server.url, token: t, caCertHash: init.pin, layout, identity, keyAlgorithm: alg, now: () => new Date(), logger: quiet });
    if (r >= 2) times.push(performance.now() - t0); // first two warm the JIT and TLS session code
  }
  results[`in-process ${alg}`] = stats(times);

  const ptimes: number[] = [];
  for (let r = 0; r < PROC_RUNS; r++) {
    const t = await token();
    const name = `bench-${i++}`;
    const t0 = performance.now();
    // Async exec: the in-process server must keep answering while the child runs.
    await promisify(execFile)(path.resolve("bin/nodecert"), ["join", "--server", server.url, "--token", t, "--ca-cert-hash", init.pin, "--root", path.join(tmp, name), "--node-name", name, "--address", "127.0.0.1", "--key-algorithm", alg]);
    ptimes.push(performance.now() - t0);
  }
  results[`new process ${alg}`] = stats(ptimes);
}
await server.close();
rmSync(tmp, { recursive: true, force: true });

console.log(`join wall time, token in hand → certificates installed (${os.cpus().length} × ${os.cpus()[0].model}, node ${process.version})`);
console.log("case                      n   min        median     p90        max");
for (const [k, s] of Object.entries(results)) {
  console.log(`${k.padEnd(24)}  ${String(s.n).padEnd(3)} ${fmt(s.min).padEnd(10)} ${fmt(s.median).padEnd(10)} ${fmt(s.p90).padEnd(10)} ${fmt(s.max)}`);
}
const r = (a: string, b: string) => (results[a].median / results[b].median).toFixed(2);
console.log(`ratio RSA-2048 / ECDSA-P256 (median, in-process): ${r("in-process RSA-2048", "in-process ECDSA-P256")}`);
console.log(`ratio RSA-2048 / ECDSA-P256 (median, new process): ${r("new process RSA-2048", "new process ECDSA-P256")}`);
console.log(`ratio new process / in-process (median, ECDSA-P256): ${r("new process ECDSA-P256", "in-process ECDSA-P256")}`);
