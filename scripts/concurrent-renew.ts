// Concurrency harness for the node store's lock: one "daemon" (scripts/crash-child.ts: startup
// recovery, then forced renewals in a loop, no control socket) and one-shot `nodecert renew all
// --force` processes (the built bin/nodecert, which finds no agent socket and renews itself)
// started against the same root at random moments. Some one-shots and some daemons are SIGKILLed
// at random moments (the daemon is started again). Throughout, state.json is read and parsed
// every few milliseconds; after every kill and at the end every pair file is checked.
//
// Invariants (any breach is a violation):
//   - 0 torn pairs: every kubelet-*-<timestamp>.pem and both -current links hold a certificate
//     and the private key that matches it, chaining to the CA;
//   - state.json always loads (never half-written, never a schema error);
//   - every one-shot that was not killed exits 0 with "renewed" lines, or exits non-zero with one
//     plain "error: ..." line (a contention message names the holder) and no stack trace;
//   - no lineage refusal: the lock makes renewals take turns, so none renews with a retired cert.
//
// Usage: node --import tsx scripts/concurrent-renew.ts [--one-shots N] [--kill-fraction F]
//          [--daemon-kills K] [--max-seconds S] [--seed X] [--json] [--keep]
import { spawn, type ChildProcess } from "node:child_process";
import { promises as fs, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { initServer } from "../src/server/init.js";
import { runServer } from "../src/server/run.js";
import { generateToken, hashSecret, parseToken } from "../src/server/tokens.js";
import { join } from "../src/agent/join.js";
import { nodeLayout, type NodeLayout } from "../src/agent/layout.js";
import { nodeIdentity } from "../src/agent/identity.js";
import { NodeStore } from "../src/agent/node-store.js";
import { timestampedFiles } from "../src/agent/prune.js";
import { privateKeyBlock } from "../src/pki/pem.js";
import { chainProblems, keyMatchesCertificate } from "../src/pki/verify.js";
import { silentLogger } from "../src/platform/log.js";

const argv = process.argv.slice(2);
const opt = (name: string, def: number) => {
  const i = argv.indexOf(name);
  return i < 0 ? def : Number(argv[i + 1]);
};
const ONE_SHOTS = opt("--one-shots", 24);
const KILL_FRACTION = opt("--kill-fraction", 0.3);
const DAEMON_KILLS = opt("--daemon-kills", 4);
const MAX_SECONDS = opt("--max-seconds", 300);
const SEED = opt("--seed", randomBytes(4).readUInt32BE(0));
const JSON_OUT = argv.includes("--json");
const KEEP = argv.includes("--keep");
const NODE_NAME = "concurrent-node";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const TSX = path.join(REPO, "node_modules/tsx/dist/esm/index.mjs");
const CHILD = path.join(REPO, "scripts/crash-child.ts");
const BIN = path.join(REPO, "bin/nodecert");

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = prng(SEED);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const log = (s: string) => {
  if (!JSON_OUT) process.stderr.write(s + "\n");
};

const stats = {
  seed: SEED,
  oneShots: 0,
  oneShotsRenewed: 0,
  oneShotsKilled: 0,
  oneShotsFailedPlainly: 0,
  contentionWaits: 0,
  contentionFailures: 0,
  daemonRuns: 0,
  daemonKills: 0,
  daemonRenewals: 0,
  stateReads: 0,
  stateReadFailures: 0,
  pairFilesChecked: 0,
  tornPairs: 0,
  lineageRefusals: 0,
  violations: 0,
  wallSeconds: 0,
  ok: false,
};
const violations: string[] = [];
const errorSamples = new Map<string, number>();
let quietViolations = false;
const violate = (what: string) => {
  stats.violations++;
  if (violations.length < 50) violations.push(what);
  if (!quietViolations) log(`VIOLATION ${what}`);
};

async function checkPairs(layout: NodeLayout, caBundle: string, where: string): Promise<void> {
  const names = await fs.readdir(layout.pkiDir);
  const files = [
    ...["kubelet-client", "kubelet-server"].flatMap((p) => timestampedFiles(names, p)),
    path.basename(layout.current("client")),
    path.basename(layout.current("serving")),
  ];
  for (const n of files) {
    let pem: string;
    try {
      pem = await fs.readFile(path.join(layout.pkiDir, n), "utf8");
    } catch (e) {
      // Pruned between readdir and read: gone, not torn.
      if ((e as NodeJS.ErrnoException).code === "ENOENT" && !n.endsWith("-current.pem")) continue;
      stats.tornPairs++;
      violate(`${where}: ${n} cannot be read: ${(e as Error).message}`);
      continue;
    }
    stats.pairFilesChecked++;
    const key = privateKeyBlock(pem);
    let problem: string | undefined;
    if (!key) problem = "holds no private key (torn)";
    else if (!keyMatchesCertificate(pem, key)) problem = "the private key does not match the certificate";
    else {
      const chain = chainProblems(pem, caBundle, new Date());
      if (chain.length) problem = chain.join("; ");
    }
    if (problem) {
      stats.tornPairs++;
      violate(`${where}: ${n}: ${problem}`);
    }
  }
}

// ---- setup: a control plane in this process, one joined node, a config for the one-shots
const t0 = performance.now();
const tmp = mkdtempSync(path.join(os.tmpdir(), "nodecert-concurrent-"));
const quiet = silentLogger();
const random = (n: number) => randomBytes(n);
const serverDir = path.join(tmp, "server");
const init = await initServer({ dir: serverDir, listen: "127.0.0.1:0", sans: ["localhost", "127.0.0.1"], allowLoopbackSans: true, now: new Date(), random });
const server = await runServer({ dir: serverDir, logger: quiet });
const root = path.join(tmp, "node");
const layout = nodeLayout(root);
const token = generateToken(random);
{
  const { id, secret } = parseToken(token)!;
  const now = new Date();
  await server.store.insertToken({ id, secretHash: hashSecret(secret), node: NODE_NAME, usesLeft: 1, expiresAt: new Date(now.getTime() + 3_600_000), createdAt: now });
}
const identity = await nodeIdentity({ nodeName: NODE_NAME, addresses: { includeLoopback: true, includeLinkLocal: false, extra: [], only: ["127.0.0.1"] }, facts: async () => ({}) });
await join({ server: server.url, token, caCertHash: init.pin, layout, identity, keyAlgorithm: "ECDSA-P256", now: () => new Date(), logger: quiet });
const caBundle = server.ca.bundlePem;
const configFile = path.join(tmp, "agent.yaml");
writeFileSync(configFile, YAML.stringify({ root, server: server.url, caCertHash: init.pin, nodeName: NODE_NAME, addresses: { only: ["127.0.0.1"] }, hooks: [], fips: "off", healthListen: "127.0.0.1:0" }));

// ---- state.json sampler
const store = new NodeStore(layout, { what: "harness" });
let sampling = true;
const sampler = (async () => {
  while (sampling) {
    stats.stateReads++;
    try {
      if (!(await store.read())) throw new Error("state.json is missing");
    } catch (e) {
      stats.stateReadFailures++;
      violate(`state.json did not load: ${(e as Error).message}`);
    }
    await sleep(5);
  }
})();

// ---- the daemon: renews in a loop until killed; started again after each kill
let daemon: { child: ChildProcess; exited: Promise<void> } | undefined;
function startDaemon(): void {
  stats.daemonRuns++;
  const child = spawn(process.execPath, ["--import", TSX, CHILD, "--root", root, "--server", server.url, "--pin", init.pin, "--node", NODE_NAME], { cwd: REPO, stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, NODECERT_LOG_LEVEL: "error" } });
  child.stdin!.on("error", () => undefined);
  let buf = "";
  child.stdout!.on("data", (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.startsWith("READY")) child.stdin!.write("GO\n");
      else if (line.startsWith("RENEWED ")) stats.daemonRenewals++;
      else if (line.startsWith("ERROR ")) {
        const e = line.slice(6);
        if (/\blineage\b|neither the newest/.test(e)) stats.lineageRefusals++;
        const k = e.replace(/[0-9a-f]{16,}/g, "<hex>").replace(/pid \d+/g, "pid N").slice(0, 200);
        errorSamples.set(`daemon: ${k}`, (errorSamples.get(`daemon: ${k}`) ?? 0) + 1);
      }
    }
  });
  daemon = { child, exited: new Promise((r) => child.once("exit", () => r())) };
}

// ---- one-shot renewals
async function oneShot(i: number): Promise<void> {
  stats.oneShots++;
  const child = spawn(BIN, ["renew", "all", "--force", "--config", configFile], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NODECERT_LOG_LEVEL: "warn" } });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once("exit", (code, signal) => r({ code, signal })));
  const kill = rand() < KILL_FRACTION;
  if (kill) {
    await sleep(100 + rand() * 1500);
    child.kill("SIGKILL");
  }
  const { code, signal } = await exited;
  if (/waiting for another nodecert process/.test(err)) stats.contentionWaits++;
  if (signal === "SIGKILL") {
    stats.oneShotsKilled++;
    await checkPairs(layout, caBundle, `after killing one-shot #${i}`);
    return;
  }
  if (/\n\s+at .+\(.+:\d+:\d+\)/.test(err)) violate(`one-shot #${i} printed a stack trace: ${err.slice(-600)}`);
  if (code === 0) {
    if (!/renewed client: serial [0-9a-f]+/.test(out) || !/renewed serving: serial [0-9a-f]+/.test(out)) violate(`one-shot #${i} exited 0 without renewing both: ${out}`);
    else stats.oneShotsRenewed++;
    return;
  }
  const errors = err.split("\n").filter((l) => l.startsWith("error: "));
  if (errors.length !== 1) {
    violate(`one-shot #${i} exited ${code} without one plain error line: ${err.slice(-600)}`);
    return;
  }
  stats.oneShotsFailedPlainly++;
  if (/locked by another nodecert process \(pid \d+, /.test(errors[0]!)) stats.contentionFailures++;
  if (/\blineage\b|neither the newest/.test(errors[0]!)) stats.lineageRefusals++;
  const k = errors[0]!.replace(/[0-9a-f]{16,}/g, "<hex>").replace(/pid \d+/g, "pid N").replace(/since \S+/, "since T").slice(0, 200);
  errorSamples.set(`one-shot: ${k}`, (errorSamples.get(`one-shot: ${k}`) ?? 0) + 1);
}

/** Negative control: the checker must see a torn pair file, or a clean run proves nothing. */
async function selfTest(): Promise<void> {
  const scratch = nodeLayout(path.join(tmp, "control"));
  await fs.mkdir(scratch.pkiDir, { recursive: true });
  const client = await fs.readFile(layout.current("client"), "utf8");
  await fs.writeFile(scratch.current("client"), client);
  await fs.writeFile(scratch.current("serving"), client.slice(0, Math.floor(client.length / 2)));
  const torn = stats.tornPairs;
  const v = stats.violations;
  quietViolations = true;
  await checkPairs(scratch, caBundle, "self-test");
  quietViolations = false;
  if (stats.tornPairs !== torn + 1) throw new Error("self-test: the pair check did not notice a torn file");
  stats.tornPairs = torn;
  stats.violations = v;
  violations.length = 0;
  await fs.rm(scratch.root, { recursive: true, force: true });
}

try {
  await selfTest();
  await checkPairs(layout, caBundle, "after join");
  startDaemon();
  const deadline = t0 + MAX_SECONDS * 1000;
  const killAt = new Set(Array.from({ length: DAEMON_KILLS }, () => Math.floor(rand() * ONE_SHOTS)));
  const running: Promise<void>[] = [];
  for (let i = 0; i < ONE_SHOTS && performance.now() < deadline; i++) {
    await sleep(rand() * 400);
    running.push(oneShot(i));
    // At most two one-shots at once besides the daemon: contention, not a fork bomb on 2 cores.
    if (running.length >= 2) await running.shift();
    if (killAt.has(i) && daemon) {
      await sleep(rand() * 800);
      daemon.child.kill("SIGKILL");
      await daemon.exited;
      stats.daemonKills++;
      await checkPairs(layout, caBundle, `after killing the daemon (${stats.daemonKills})`);
      startDaemon();
    }
  }
  await Promise.all(running);
  // Let the daemon renew once more after the last one-shot: the node is still renewable.
  const before = stats.daemonRenewals;
  for (let waited = 0; stats.daemonRenewals === before && waited < 30_000; waited += 50) await sleep(50);
  if (stats.daemonRenewals === before) violate("the daemon did not renew after the last one-shot");
  daemon?.child.kill("SIGKILL");
  await daemon?.exited;
  sampling = false;
  await sampler;
  await checkPairs(layout, caBundle, "at the end");
} finally {
  sampling = false;
  daemon?.child.kill("SIGKILL");
  await server.close();
  if (KEEP) log(`kept ${tmp}`);
  else rmSync(tmp, { recursive: true, force: true });
}

stats.wallSeconds = Math.round((performance.now() - t0) / 100) / 10;
stats.ok = stats.violations === 0 && stats.lineageRefusals === 0 && stats.oneShotsRenewed > 0 && stats.daemonRenewals > 0;
const errorList = [...errorSamples.entries()].sort((a, b) => b[1] - a[1]).slice(0, 10).map(([message, count]) => ({ count, message }));
if (JSON_OUT) process.stdout.write(JSON.stringify({ ...stats, violationDetails: violations, errorSamples: errorList }, null, 2) + "\n");
else {
  process.stdout.write(
    [
      `concurrent-renew (seed ${SEED})`,
      `  one-shots: ${stats.oneShots} (${stats.oneShotsRenewed} renewed, ${stats.oneShotsKilled} killed, ${stats.oneShotsFailedPlainly} failed with a plain error; ${stats.contentionWaits} waited for the lock, ${stats.contentionFailures} gave up on it)`,
      `  daemon: ${stats.daemonRuns} runs, ${stats.daemonKills} kills, ${stats.daemonRenewals} renewals`,
      `  state.json reads: ${stats.stateReads} (${stats.stateReadFailures} failed); pair files checked: ${stats.pairFilesChecked} (${stats.tornPairs} torn)`,
      `  lineage refusals: ${stats.lineageRefusals}; violations: ${stats.violations}`,
      ...errorList.map((e) => `    ${e.count} × ${e.message}`),
      `  wall time: ${stats.wallSeconds} s; result: ${stats.ok ? "OK" : "FAILED"}`,
    ].join("\n") + "\n",
  );
}
process.exit(stats.ok ? 0 : 1);
