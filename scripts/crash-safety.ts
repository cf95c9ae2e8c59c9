// kill -9 harness for the agent's renewal/install path.
//
// Runs a real control plane in this process (loopback only), joins one node, then starts
// scripts/crash-child.ts (startup recovery + a tight loop of forced renewals) over and over and
// SIGKILLs it at random moments: mostly 0–maxDelay ms into the renewal loop, sometimes during
// startup recovery. Right after every kill, and again after every startup recovery, it checks
// that both kubelet-{client,server}-current.pem hold a certificate and the private key that
// matches it, chaining to the CA. Any torn or mismatched pair is a violation.
//
// Usage: node --import tsx scripts/crash-safety.ts [--renewals N] [--kills K] [--json]
//          [--max-delay MS] [--late-max-delay MS] [--pre-ready P] [--max-iterations I] [--max-seconds S] [--seed X] [--keep]
// Exit 0 only when the targets were reached with no violation, no lineage refusal and no stall.
import { spawn, type ChildProcess } from "node:child_process";
import { promises as fs, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { initServer } from "../src/server/init.js";
import { runServer } from "../src/server/run.js";
import { generateToken, hashSecret, parseToken } from "../src/server/tokens.js";
import { join } from "../src/agent/join.js";
import { nodeLayout, type NodeLayout } from "../src/agent/layout.js";
import { nodeIdentity } from "../src/agent/identity.js";
import { pendingFile } from "../src/agent/apply.js";
import { readState } from "../src/agent/state.js";
import { privateKeyBlock } from "../src/pki/pem.js";
import { chainProblems, keyMatchesCertificate } from "../src/pki/verify.js";
import { certificateInfo } from "../src/pki/certificate-info.js";
import { TMP_MARKER } from "../src/platform/files.js";
import type { CertKind } from "../src/pki/csr.js";
import type { Store } from "../src/server/store/store.js";
import { silentLogger } from "../src/platform/log.js";

// ---------------------------------------------------------------------------------------------
// Options

const argv = process.argv.slice(2);
function opt(name: string, def: number): number {
  const i = argv.indexOf(name);
  if (i < 0) return def;
  const v = Number(argv[i + 1]);
  if (!Number.isFinite(v) || v < 0) {
    process.stderr.write(`crash-safety: ${name} needs a non-negative number\n`);
    process.exit(2);
  }
  return v;
}
const flag = (name: string) => argv.includes(name);

const TARGET_RENEWALS = opt("--renewals", 200);
const TARGET_KILLS = opt("--kills", 100);
const MAX_DELAY_MS = opt("--max-delay", 400);
/** Once the kill target is met, only renewals are missing: kill later, so fewer process starts are needed. */
const LATE_MAX_DELAY_MS = opt("--late-max-delay", 1600);
const PRE_READY_FRACTION = opt("--pre-ready", 0.15);
const MAX_ITERATIONS = opt("--max-iterations", Math.max(50, 4 * TARGET_KILLS + TARGET_RENEWALS));
const MAX_SECONDS = opt("--max-seconds", 900);
const STUCK_RUNS = 20;
const SEED = opt("--seed", randomBytes(4).readUInt32BE(0));
const JSON_OUT = flag("--json");
const KEEP = flag("--keep");
const NODE_NAME = "crash-node";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const TSX = path.join(REPO, "node_modules/tsx/dist/esm/index.mjs");
const CHILD = path.join(REPO, "scripts/crash-child.ts");

/** mulberry32: a seeded PRNG, so a failing schedule can be replayed with --seed. */
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

const log = (s: string) => {
  if (!JSON_OUT) process.stderr.write(s + "\n");
};

// ---------------------------------------------------------------------------------------------
// The invariant

interface Violation {
  iteration: number;
  phase: "after-kill" | "after-recovery" | "initial";
  problem: string;
}

async function checkPairs(layout: NodeLayout, caBundle: string, store: Store): Promise<string[]> {
  const problems: string[] = [];
  const now = new Date();
  for (const kind of ["client", "serving"] as CertKind[]) {
    const link = layout.current(kind);
    const name = path.basename(link);
    let pem: string;
    try {
      pem = await fs.readFile(link, "utf8");
    } catch (e) {
      problems.push(`${name}: unreadable (${(e as Error).message})`);
      continue;
    }
    const key = privateKeyBlock(pem);
    if (!key) {
      problems.push(`${name}: holds no private key (torn file?)`);
      continue;
    }
    if (!keyMatchesCertificate(pem, key)) problems.push(`${name}: the private key does not match the certificate`);
    let chain: string[];
    try {
      chain = chainProblems(pem, caBundle, now);
    } catch (e) {
      chain = [`certificate does not parse: ${(e as Error).message}`];
    }
    for (const p of chain) problems.push(`${name}: ${p}`);
    if (chain.length === 0) {
      const info = certificateInfo(pem);
      const rec = await store.getCertificate(info.serial);
      if (!rec || rec.node !== NODE_NAME || rec.kind !== kind) problems.push(`${name}: serial ${info.serial} is not a ${kind} certificate the server issued to ${NODE_NAME}`);
    }
  }
  try {
    if (!(await readState(layout))) problems.push("state.json is missing");
  } catch (e) {
    problems.push(`state.json does not load: ${(e as Error).message}`);
  }
  return problems;
}

/** After startup recovery nothing may be left half-done: no temp files, no pending plan, state matches the files. */
async function checkRecovered(layout: NodeLayout): Promise<string[]> {
  const problems: string[] = [];
  for (const dir of [layout.pkiDir, layout.stateDir, path.dirname(layout.kubeconfig), layout.kubernetesPkiDir]) {
    const left = (await fs.readdir(dir).catch(() => [] as string[])).filter((n) => n.includes(TMP_MARKER));
    if (left.length) problems.push(`temp files left after recovery in ${dir}: ${left.join(", ")}`);
  }
  if (await fs.stat(pendingFile(layout)).then(() => true, () => false)) problems.push("pending-install.json still present after recovery");
  const state = await readState(layout).catch(() => undefined);
  for (const kind of ["client", "serving"] as CertKind[]) {
    const pem = await fs.readFile(layout.current(kind), "utf8").catch(() => undefined);
    if (!pem || !state) continue;
    const serial = certificateInfo(pem).serial;
    if (state.certificates[kind]?.serial !== serial) problems.push(`state.json records ${kind} serial ${state.certificates[kind]?.serial}, the current file holds ${serial}`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// One child run

interface Run {
  child: ChildProcess;
  lines: string[];
  renewed: number;
  errors: string[];
  recovering: Promise<boolean>;
  ready: Promise<string | undefined>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
  onRenewed?: () => void;
}

function startChild(root: string, serverUrl: string, pin: string): Run {
  const child = spawn(process.execPath, ["--import", TSX, CHILD, "--root", root, "--server", serverUrl, "--pin", pin, "--node", NODE_NAME], {
    cwd: REPO,
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, NODECERT_LOG_LEVEL: "error" },
  });
  let buf = "";
  let err = "";
  let resolveRecovering!: (v: boolean) => void;
  let resolveReady!: (v: string | undefined) => void;
  const run: Run = {
    child,
    lines: [],
    renewed: 0,
    errors: [],
    recovering: new Promise((r) => (resolveRecovering = r)),
    ready: new Promise((r) => (resolveReady = r)),
    exited: new Promise((r) => child.on("exit", (code, signal) => r({ code, signal }))),
    stderr: () => err,
  };
  child.stdin!.on("error", () => undefined); // EPIPE once the child is dead
  child.stderr!.on("data", (d: Buffer) => {
    err = (err + d.toString()).slice(-8000);
  });
  child.stdout!.on("data", (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    // Only complete lines count: a line cut by the kill is not evidence of anything.
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      run.lines.push(line);
      if (line === "RECOVERING") resolveRecovering(true);
      else if (line.startsWith("READY")) resolveReady(line.slice(6));
      else if (line.startsWith("RENEWED ")) {
        run.renewed++;
        run.onRenewed?.();
      } else if (line.startsWith("ERROR ")) run.errors.push(line.slice(6));
    }
  });
  void run.exited.then(() => {
    resolveRecovering(false);
    resolveReady(undefined);
  });
  return run;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const withTimeout = <T>(p: Promise<T>, ms: number): Promise<T | "timeout"> =>
  new Promise((resolve) => {
    const t = setTimeout(() => resolve("timeout"), ms);
    void p.then((v) => {
      clearTimeout(t);
      resolve(v);
    });
  });

const median = (xs: number[]) => {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

// ---------------------------------------------------------------------------------------------
// Main

const t0 = performance.now();
const tmp = mkdtempSync(path.join(os.tmpdir(), "nodecert-crash-"));
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

const stats = {
  seed: SEED,
  kills: 0,
  killsBeforeReady: 0,
  killsAfterReady: 0,
  renewals: 0,
  violations: 0,
  iterations: 0,
  lateIterations: 0,
  errors: 0,
  lineageRefusals: 0,
  thrownErrors: 0,
  recoveriesWithWork: 0,
  recoveryActions: {} as Record<string, number>,
  unexpectedExits: 0,
  startupTimeouts: 0,
  maxRunsWithoutRenewal: 0,
  stuck: false,
  finalRenewal: false,
  targetsMet: false,
  stoppedBy: "",
  medianMsToReady: 0,
  medianKillDelayMs: 0,
  /** The widest kill window used (it widens while runs end without a renewal). */
  maxWindowMs: 0,
  wallSeconds: 0,
  ok: false,
};
const violationDetails: Violation[] = [];
const errorSamples = new Map<string, number>();
const readyTimes: number[] = [];
const killDelays: number[] = [];

function violate(iteration: number, phase: Violation["phase"], problems: string[]): void {
  for (const problem of problems) {
    stats.violations++;
    if (violationDetails.length < 50) violationDetails.push({ iteration, phase, problem });
    log(`VIOLATION [${phase}, iteration ${iteration}] ${problem}`);
  }
}

function account(run: Run): void {
  stats.renewals += run.renewed;
  for (const e of run.errors) {
    stats.errors++;
    if (/\blineage\b|neither the newest/.test(e)) stats.lineageRefusals++;
    if (e.startsWith("(thrown)")) stats.thrownErrors++;
    const key = e.replace(/[0-9a-f]{16,}/g, "<hex>").slice(0, 300);
    errorSamples.set(key, (errorSamples.get(key) ?? 0) + 1);
  }
}

function noteRecovery(readyLine: string): void {
  let actions: string[] = [];
  try {
    actions = JSON.parse(readyLine) as string[];
  } catch {
    /* not JSON: ignore */
  }
  if (actions.length) stats.recoveriesWithWork++;
  for (const a of actions) {
    const kind = a.replace(/\/\S+/g, "<path>").replace(/kubelet-(client|server)-[\d-]+\.pem/g, "kubelet-$1-<ts>.pem");
    stats.recoveryActions[kind] = (stats.recoveryActions[kind] ?? 0) + 1;
  }
}

violate(0, "initial", await checkPairs(layout, caBundle, server.store));

/** Negative control: the checker must see a torn file and a swapped key, or a clean run proves nothing. */
async function selfTest(): Promise<void> {
  const scratch = nodeLayout(path.join(tmp, "control"));
  await fs.mkdir(scratch.pkiDir, { recursive: true });
  await fs.mkdir(scratch.stateDir, { recursive: true });
  await fs.copyFile(layout.stateFile, scratch.stateFile);
  const client = await fs.readFile(layout.current("client"), "utf8");
  const serving = await fs.readFile(layout.current("serving"), "utf8");
  const cases: [string, string, string][] = [
    ["torn client file", client.slice(0, Math.floor(client.length / 2)), serving],
    ["client certificate with the serving key", client.slice(0, client.indexOf("-----BEGIN PRIVATE KEY")) + privateKeyBlock(serving)!, serving],
  ];
  for (const [what, c, s] of cases) {
    await fs.writeFile(scratch.current("client"), c);
    await fs.writeFile(scratch.current("serving"), s);
    if ((await checkPairs(scratch, caBundle, server.store)).length === 0) throw new Error(`self-test: the invariant check did not notice a ${what}`);
  }
  await fs.rm(scratch.root, { recursive: true, force: true });
}
await selfTest();

let runsWithoutRenewal = 0;
const deadline = t0 + MAX_SECONDS * 1000;
const done = () => stats.renewals >= TARGET_RENEWALS && stats.kills >= TARGET_KILLS;

try {
  while (!done()) {
    if (stats.iterations >= MAX_ITERATIONS) {
      stats.stoppedBy = `iteration cap (${MAX_ITERATIONS})`;
      break;
    }
    if (performance.now() > deadline) {
      stats.stoppedBy = `time cap (${MAX_SECONDS} s)`;
      break;
    }
    const it = ++stats.iterations;
    const preReady = rand() < PRE_READY_FRACTION;
    const started = performance.now();
    const run = startChild(root, server.url, init.pin);
    let killedAfterReady = false;

    if (preReady) {
      // Kill during startup recovery: a few ms after it begins (recovery itself takes a few ms).
      const rec = await withTimeout(run.recovering, 60_000);
      if (rec === true) {
        await sleep(rand() * 20);
      }
    } else {
      const ready = await withTimeout(run.ready, 60_000);
      if (ready === "timeout") {
        stats.startupTimeouts++;
        violate(it, "after-recovery", [`the child did not finish startup recovery within 60 s; stderr: ${run.stderr().slice(-500)}`]);
      } else if (ready !== undefined) {
        readyTimes.push(performance.now() - started);
        noteRecovery(ready);
        // The child waits for GO: nothing writes while we look.
        violate(it, "after-recovery", [...(await checkPairs(layout, caBundle, server.store)), ...(await checkRecovered(layout))]);
        const late = stats.kills >= TARGET_KILLS;
        if (late) stats.lateIterations++;
        // On a loaded machine a renewal can take longer than the kill window, and then no run
        // ever renews: widen the window after every 3 runs without a renewal (×2, up to 15 s),
        // so "stuck" means the agent cannot renew, not that the machine was slow.
        const widen = Math.min(2 ** Math.floor(runsWithoutRenewal / 3), 15_000 / MAX_DELAY_MS);
        stats.maxWindowMs = Math.max(stats.maxWindowMs, Math.round((late ? LATE_MAX_DELAY_MS : MAX_DELAY_MS) * widen));
        const delay = rand() * (late ? LATE_MAX_DELAY_MS : MAX_DELAY_MS) * widen;
        killDelays.push(delay);
        run.child.stdin!.write("GO\n");
        await sleep(delay);
        killedAfterReady = true;
      }
    }

    const alive = run.child.exitCode === null && run.child.signalCode === null;
    if (alive) run.child.kill("SIGKILL");
    const exit = await run.exited;
    if (alive && exit.signal === "SIGKILL") {
      stats.kills++;
      if (killedAfterReady) stats.killsAfterReady++;
      else stats.killsBeforeReady++;
    } else {
      stats.unexpectedExits++;
      violate(it, "after-kill", [`the child exited by itself (code ${exit.code}, signal ${exit.signal}); stderr: ${run.stderr().slice(-800)}`]);
    }
    account(run);
    violate(it, "after-kill", await checkPairs(layout, caBundle, server.store));

    if (killedAfterReady) {
      if (run.renewed > 0) runsWithoutRenewal = 0;
      else runsWithoutRenewal++;
      stats.maxRunsWithoutRenewal = Math.max(stats.maxRunsWithoutRenewal, runsWithoutRenewal);
      if (runsWithoutRenewal >= STUCK_RUNS) {
        stats.stuck = true;
        stats.stoppedBy = `stuck: no renewal in ${STUCK_RUNS} consecutive runs`;
        log(`STUCK: no renewal in ${STUCK_RUNS} consecutive runs; last errors: ${run.errors.slice(-3).join(" | ")}`);
        break;
      }
    }
    if (it % 10 === 0) log(`iteration ${it}: kills ${stats.kills}, renewals ${stats.renewals}, violations ${stats.violations}, errors ${stats.errors}`);
  }
  stats.targetsMet = done();
  if (stats.targetsMet) stats.stoppedBy = "targets reached";

  // Liveness after the last kill: a fresh process recovers and can still renew (no lockout).
  if (!stats.stuck) {
    const run = startChild(root, server.url, init.pin);
    const ready = await withTimeout(run.ready, 60_000);
    if (typeof ready === "string") {
      noteRecovery(ready);
      violate(stats.iterations + 1, "after-recovery", [...(await checkPairs(layout, caBundle, server.store)), ...(await checkRecovered(layout))]);
      const renewed = new Promise<void>((r) => (run.onRenewed = r));
      run.child.stdin!.write("GO\n");
      stats.finalRenewal = (await withTimeout(renewed, 30_000)) !== "timeout";
    }
    if (run.child.exitCode === null && run.child.signalCode === null) {
      run.child.kill("SIGKILL");
      stats.kills++;
      stats.killsAfterReady++;
    }
    await run.exited;
    account(run);
    violate(stats.iterations + 1, "after-kill", await checkPairs(layout, caBundle, server.store));
  }
} finally {
  await server.close();
  if (KEEP) log(`kept ${tmp}`);
  else rmSync(tmp, { recursive: true, force: true });
}

stats.wallSeconds = Math.round((performance.now() - t0) / 100) / 10;
stats.medianMsToReady = Math.round(median(readyTimes));
stats.medianKillDelayMs = Math.round(median(killDelays));
stats.ok = stats.violations === 0 && stats.lineageRefusals === 0 && !stats.stuck && stats.targetsMet && stats.finalRenewal;

const errorList = [...errorSamples.entries()].sort((a, b) => b[1] - a[1]).slice(0, 10).map(([message, count]) => ({ count, message }));
if (JSON_OUT) {
  process.stdout.write(JSON.stringify({ ...stats, targets: { renewals: TARGET_RENEWALS, kills: TARGET_KILLS }, violationDetails, errorSamples: errorList }, null, 2) + "\n");
} else {
  const lines = [
    `crash-safety (seed ${SEED}, ${os.cpus().length} CPUs, node ${process.version})`,
    `  kills:              ${stats.kills} (${stats.killsBeforeReady} during startup recovery, ${stats.killsAfterReady} in the renewal loop; target ${TARGET_KILLS})`,
    `  renewals completed: ${stats.renewals} (target ${TARGET_RENEWALS})`,
    `  violations:         ${stats.violations}`,
    `  iterations:         ${stats.iterations} (${stats.lateIterations} with the kill window widened to ${LATE_MAX_DELAY_MS} ms after the kill target); stopped by: ${stats.stoppedBy}`,
    `  recoveries with work: ${stats.recoveriesWithWork}`,
    ...Object.entries(stats.recoveryActions).map(([k, n]) => `      ${n} × ${k}`),
    `  renewal errors:     ${stats.errors} (lineage refusals ${stats.lineageRefusals}, thrown ${stats.thrownErrors})`,
    ...errorList.map((e) => `      ${e.count} × ${e.message}`),
    `  longest run of kills without a renewal: ${stats.maxRunsWithoutRenewal}; stuck: ${stats.stuck}; renewed after the last kill: ${stats.finalRenewal}`,
    `  median spawn→READY: ${stats.medianMsToReady} ms; median kill delay after GO: ${stats.medianKillDelayMs} ms; widest kill window: ${stats.maxWindowMs} ms`,
    `  wall time:          ${stats.wallSeconds} s`,
    `  result:             ${stats.ok ? "OK" : "FAILED"}`,
  ];
  process.stdout.write(lines.join("\n") + "\n");
}
process.exit(stats.ok ? 0 : 1);
