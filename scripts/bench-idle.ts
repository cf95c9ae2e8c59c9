// Benchmark: the agent's idle resource use with its renewal schedule running. A control plane runs
// in this process; the agent runs as its own process (`bin/nodecert agent`), joins with a bootstrap
// token, and is then sampled from /proc (VmRSS, utime+stime) for --duration seconds. Scheduled
// checks are counted from the agent's debug log ("certificate check", one line per certificate).
// Linux only (/proc). Loopback only.
// Usage: node --import tsx scripts/bench-idle.ts [--duration S] [--interval S] [--schedule CRON]
//        [--log-level LEVEL] [--json]
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import cron from "node-cron";
import YAML from "yaml";
import { CLK_TCK, commandLine, readProcStatus, shq } from "./proc-stats.js";
import { initServer } from "../src/server/init.js";
import { runServer, type RunningServer } from "../src/server/run.js";
import { generateToken, hashSecret, parseToken } from "../src/server/tokens.js";
import { silentLogger } from "../src/platform/log.js";

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const BIN = path.join(ROOT, "bin/nodecert");
const NODE_NAME = "idle-node";

const { values: opts } = parseArgs({
  options: {
    duration: { type: "string", default: "600" },
    interval: { type: "string", default: "5" },
    schedule: { type: "string", default: "* * * * *" },
    "log-level": { type: "string", default: "debug" },
    "join-timeout": { type: "string", default: "60" },
    json: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (opts.help) {
  console.log("usage: node --import tsx scripts/bench-idle.ts [--duration S=600] [--interval S=5] [--schedule CRON='* * * * *'] [--log-level debug] [--join-timeout S=60] [--json]");
  process.exit(0);
}
const num = (name: string, v: string, min: number): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) {
    console.error(`--${name} must be a number ≥ ${min}, got "${v}"`);
    process.exit(2);
  }
  return n;
};
const DURATION_S = num("duration", opts.duration!, 1);
const INTERVAL_S = num("interval", opts.interval!, 0.1);
const JOIN_TIMEOUT_S = num("join-timeout", opts["join-timeout"]!, 1);
const SCHEDULE = opts.schedule!;
const LOG_LEVEL = opts["log-level"]!;
if (!cron.validate(SCHEDULE)) {
  console.error(`--schedule "${SCHEDULE}" is not a valid cron expression`);
  process.exit(2);
}
if (process.platform !== "linux") {
  console.error("bench-idle reads /proc and runs on Linux only");
  process.exit(2);
}

const COMMAND = commandLine();
const MiB = 1024 * 1024;
const say = (s: string) => {
  if (!opts.json) process.stderr.write(`[bench-idle] ${s}\n`);
};

// ---------- /proc readers ----------
interface ProcSample {
  /** Seconds since the window started. */
  t: number;
  rssBytes: number;
  rssAnonBytes: number;
  hwmBytes: number;
  threads: number;
  /** utime + stime, clock ticks. */
  cpuTicks: number;
  /** cutime + cstime (waited-for children), clock ticks. */
  childTicks: number;
}

function readProc(pid: number, t: number): ProcSample {
  const p = readProcStatus(pid);
  return { t, rssBytes: p.rssKiB * 1024, rssAnonBytes: p.anonKiB * 1024, hwmBytes: p.hwmKiB * 1024, threads: p.threads, cpuTicks: p.cpuTicks, childTicks: p.childTicks };
}

// ---------- small helpers ----------
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}
const median = (xs: number[]) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const mib = (b: number) => b / MiB;
const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "n/a");
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "n/a");
const f3 = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : "n/a");

interface LogLine {
  level?: string;
  message?: string;
  timestamp?: string;
  kind?: string;
  action?: string;
  reason?: string;
  [k: string]: unknown;
}

// ---------- setup ----------
const quiet = silentLogger();
const random = (n: number) => randomBytes(n);
const tmp = mkdtempSync(path.join(os.tmpdir(), "nodecert-idle-"));
let server: RunningServer | undefined;
let agent: ChildProcess | undefined;
let agentExit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
const logs: LogLine[] = [];
const rawStderr: string[] = [];
let cleanedUp = false;

async function stopAgent(): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number } | undefined> {
  const child = agent;
  if (!child) return undefined;
  const t0 = performance.now();
  if (!agentExit) {
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    child.kill("SIGTERM");
    const killed = await Promise.race([exited.then(() => false), sleep(15_000).then(() => true)]);
    if (killed && !agentExit) {
      child.kill("SIGKILL");
      await exited;
    }
  }
  return agentExit ? { ...agentExit, ms: performance.now() - t0 } : undefined;
}

async function cleanup(): Promise<void> {
  if (cleanedUp) return;
  cleanedUp = true;
  await stopAgent().catch(() => undefined);
  await server?.close().catch(() => undefined);
  rmSync(tmp, { recursive: true, force: true });
}

process.on("SIGINT", () => {
  say("interrupted; cleaning up");
  void cleanup().finally(() => process.exit(130));
});

async function main(): Promise<void> {
  // Control plane in this process.
  const serverDir = path.join(tmp, "server");
  const init = await initServer({ dir: serverDir, listen: "127.0.0.1:0", sans: ["localhost", "127.0.0.1"], allowLoopbackSans: true, now: new Date(), random });
  server = await runServer({ dir: serverDir, logger: quiet });
  const token = generateToken(random);
  const { id, secret } = parseToken(token)!;
  const now = new Date();
  await server.store.insertToken({ id, secretHash: hashSecret(secret), node: NODE_NAME, usesLeft: 1, expiresAt: new Date(now.getTime() + 3_600_000), createdAt: now });

  // Agent configuration.
  const tokenFile = path.join(tmp, "token");
  writeFileSync(tokenFile, token + "\n", { mode: 0o600 });
  const healthPort = await freePort();
  const agentConfig = {
    root: path.join(tmp, "node"),
    server: server.url,
    caCertHash: init.pin,
    tokenFile,
    nodeName: NODE_NAME,
    addresses: { only: ["127.0.0.1"] },
    healthListen: `127.0.0.1:${healthPort}`,
    schedule: SCHEDULE,
    hooks: [],
  };
  const configFile = path.join(tmp, "agent.yaml");
  writeFileSync(configFile, YAML.stringify(agentConfig), { mode: 0o600 });
  const agentArgs = ["agent", "--config", configFile];
  const agentCommand = `NODECERT_LOG_LEVEL=${LOG_LEVEL} ${[path.relative(process.cwd(), BIN) || BIN, ...agentArgs].map(shq).join(" ")}`;

  // The agent, as its own process. bin/nodecert is `sh` that execs node, so the pid stays the agent's.
  say(`starting agent: ${agentCommand}`);
  const startedAt = performance.now();
  agent = spawn(BIN, agentArgs, { env: { ...process.env, NODECERT_LOG_LEVEL: LOG_LEVEL }, stdio: ["ignore", "pipe", "pipe"] });
  const pid = agent.pid!;
  agent.on("exit", (code, signal) => (agentExit = { code, signal }));
  let buf = "";
  agent.stdout!.setEncoding("utf8").on("data", (d: string) => {
    buf += d;
    let i: number;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (!line.trim()) continue;
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        logs.push({ message: `(not JSON) ${line}` });
      }
    }
  });
  agent.stderr!.setEncoding("utf8").on("data", (d: string) => rawStderr.push(d));

  // Wait for the join.
  const deadline = performance.now() + JOIN_TIMEOUT_S * 1000;
  let joined = false;
  while (!joined) {
    if (agentExit) throw new Error(`agent exited before joining (code ${agentExit.code}, signal ${agentExit.signal}): ${rawStderr.join("").trim() || logs.map((l) => l.message).join("; ")}`);
    if (performance.now() > deadline) throw new Error(`agent did not join within ${JOIN_TIMEOUT_S}s; last log lines: ${JSON.stringify(logs.slice(-5))}`);
    try {
      const res = await fetch(`http://127.0.0.1:${healthPort}/healthz`);
      if (res.ok) joined = ((await res.json()) as { joined?: boolean }).joined === true;
    } catch {
      // not listening yet
    }
    if (!joined) await sleep(200);
  }
  const joinMs = performance.now() - startedAt;
  const comm = readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  if (comm !== "node") throw new Error(`pid ${pid} is "${comm}", not the agent's node process`);
  say(`agent pid ${pid} joined after ${(joinMs / 1000).toFixed(2)} s (process start → /healthz joined:true); sampling for ${DURATION_S} s every ${INTERVAL_S} s`);

  // Sample on an absolute grid so the window does not drift.
  const logsBeforeWindow = logs.length;
  const windowStartWall = Date.now();
  const t0 = performance.now();
  const samples: ProcSample[] = [];
  const n = Math.floor(DURATION_S / INTERVAL_S + 1e-9);
  for (let k = 0; k <= n; k++) {
    await sleep(t0 + k * INTERVAL_S * 1000 - performance.now());
    if (agentExit) throw new Error(`agent exited during the window (code ${agentExit.code}, signal ${agentExit.signal}) after ${samples.length} samples`);
    samples.push(readProc(pid, (performance.now() - t0) / 1000));
    if (!opts.json && k > 0 && k % Math.max(1, Math.round(60 / INTERVAL_S)) === 0) {
      say(`t=${samples[samples.length - 1].t.toFixed(0)}s rss=${f1(mib(samples[samples.length - 1].rssBytes))} MiB cpu=${((samples[samples.length - 1].cpuTicks - samples[0].cpuTicks) / CLK_TCK).toFixed(2)} s`);
    }
  }
  if (DURATION_S - n * INTERVAL_S > 1e-6) {
    await sleep(t0 + DURATION_S * 1000 - performance.now());
    samples.push(readProc(pid, (performance.now() - t0) / 1000));
  }
  const windowEndWall = windowStartWall + (samples[samples.length - 1].t) * 1000;
  const wallS = samples[samples.length - 1].t - samples[0].t;

  // One /metrics scrape after the window (so it does not add to the measured CPU).
  await sleep(1500); // lets a check fired at the window's last second finish logging
  let metricsText = "";
  try {
    metricsText = await (await fetch(`http://127.0.0.1:${healthPort}/metrics`)).text();
  } catch (e) {
    metricsText = `# scrape failed: ${(e as Error).message}`;
  }
  const metric = (name: string, labels?: string) => {
    let sum = 0;
    let found = false;
    for (const line of metricsText.split("\n")) {
      if (!line.startsWith(name) || line.startsWith("#")) continue;
      const rest = line.slice(name.length);
      if (!(rest.startsWith(" ") || rest.startsWith("{"))) continue;
      if (labels && !rest.includes(labels)) continue;
      sum += Number(line.split(" ").pop());
      found = true;
    }
    return found ? sum : NaN;
  };

  const stop = await stopAgent();
  await server.close();
  server = undefined;

  // ---------- analysis ----------
  const rss = samples.map((s) => s.rssBytes);
  const edge = Math.min(60, DURATION_S / 2);
  const first = samples.filter((s) => s.t < edge).map((s) => s.rssBytes);
  const last = samples.filter((s) => s.t > DURATION_S - edge).map((s) => s.rssBytes);
  const firstMed = median(first);
  const lastMed = median(last);
  const anonFirst = median(samples.filter((s) => s.t < edge).map((s) => s.rssAnonBytes));
  const anonLast = median(samples.filter((s) => s.t > DURATION_S - edge).map((s) => s.rssAnonBytes));
  const cpuTicks = samples[samples.length - 1].cpuTicks - samples[0].cpuTicks;
  const childTicks = samples[samples.length - 1].childTicks - samples[0].childTicks;
  const cpuS = cpuTicks / CLK_TCK;
  const cpuPct = (cpuS / wallS) * 100;

  // Checks: the renewer logs one "certificate check" line per certificate per check (debug level);
  // the client line marks one check. A check is attributed to the second it was logged in.
  const ts = (l: LogLine) => (l.timestamp ? Date.parse(l.timestamp) : NaN);
  const checkLines = logs.filter((l) => l.message === "certificate check" && l.kind === "client");
  const winFirstSec = Math.ceil(windowStartWall / 1000);
  const winLastSec = Math.floor(windowEndWall / 1000);
  const inWindow = (l: LogLine) => {
    const s = Math.floor(ts(l) / 1000);
    return s >= winFirstSec && s <= winLastSec;
  };
  const windowChecks = checkLines.filter(inWindow);
  const task = cron.createTask(SCHEDULE, () => undefined);
  let expected = 0;
  const fireSecs: number[] = [];
  for (let s = winFirstSec; s <= winLastSec; s++) {
    if (task.match(new Date(s * 1000))) {
      expected++;
      fireSecs.push(s * 1000);
    }
  }
  await task.destroy();
  // Delay from the scheduled second to the "certificate check" line (evaluation of both certificates).
  const lags = windowChecks
    .map((l) => {
      const t = ts(l);
      const fire = fireSecs.filter((x) => x <= t).pop();
      return fire === undefined ? NaN : t - fire;
    })
    .filter(Number.isFinite);
  const actions: Record<string, number> = {};
  for (const l of logs.filter((l) => l.message === "certificate check" && inWindow(l))) actions[`${l.kind}:${l.action}`] = (actions[`${l.kind}:${l.action}`] ?? 0) + 1;
  // Same attribution as the checks: by the second a line was logged in.
  const windowLogs = logs.slice(logsBeforeWindow).filter((l) => Number.isNaN(ts(l)) || inWindow(l));
  const notable = windowLogs.filter((l) => l.level === "warn" || l.level === "error" || l.message === "renewed" || l.message === "certificate needs renewal" || l.message === "joining");
  const byLevel: Record<string, number> = {};
  for (const l of windowLogs) byLevel[l.level ?? "?"] = (byLevel[l.level ?? "?"] ?? 0) + 1;
  const byMessage: Record<string, number> = {};
  for (const l of windowLogs) byMessage[`${l.level}: ${l.message}`] = (byMessage[`${l.level}: ${l.message}`] ?? 0) + 1;

  const result = {
    date: new Date(windowStartWall).toISOString(),
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memGiB: Math.round(os.totalmem() / 1024 ** 3), node: process.version, kernel: os.release(), clkTck: CLK_TCK },
    command: COMMAND,
    agentCommand,
    agentPid: pid,
    settings: { durationS: DURATION_S, intervalS: INTERVAL_S, schedule: SCHEDULE, logLevel: LOG_LEVEL, keyAlgorithm: "ECDSA-P256", hooks: 0 },
    joinS: joinMs / 1000,
    window: { start: new Date(windowStartWall).toISOString(), end: new Date(windowEndWall).toISOString(), wallS, samples: samples.length },
    rssMiB: {
      min: mib(Math.min(...rss)),
      median: mib(median(rss)),
      max: mib(Math.max(...rss)),
      edgeS: edge,
      firstMedian: mib(firstMed),
      lastMedian: mib(lastMed),
      growth: mib(lastMed - firstMed),
      growthPct: ((lastMed - firstMed) / firstMed) * 100,
      anonFirstMedian: mib(anonFirst),
      anonLastMedian: mib(anonLast),
      peakHwm: mib(samples[samples.length - 1].hwmBytes),
    },
    threads: { min: Math.min(...samples.map((s) => s.threads)), max: Math.max(...samples.map((s) => s.threads)) },
    cpu: { seconds: cpuS, ticks: cpuTicks, pctOfOneCore: cpuPct, perCheckMs: windowChecks.length ? (cpuS * 1000) / windowChecks.length : NaN, childSeconds: childTicks / CLK_TCK },
    checks: { observed: windowChecks.length, expected, lagMs: { median: median(lags), max: lags.length ? Math.max(...lags) : NaN }, actions },
    renewalsTotal: metric("nodecert_renewals_total"),
    renewalErrorsTotal: metric("nodecert_renewal_errors_total"),
    logLinesInWindow: byLevel,
    logMessagesInWindow: byMessage,
    notableLogLines: notable,
    shutdown: stop ? { code: stop.code, signal: stop.signal, ms: stop.ms } : undefined,
    samples: samples.map((s) => ({ t: Number(s.t.toFixed(3)), rssKiB: s.rssBytes / 1024, rssAnonKiB: s.rssAnonBytes / 1024, threads: s.threads, cpuTicks: s.cpuTicks - samples[0].cpuTicks })),
  };

  if (opts.json) {
    console.log(JSON.stringify(result, null, 2));
    return;
  }
  const r = result;
  const rows: [string, string][] = [
    ["window", `${f1(r.window.wallS)} s, ${r.window.samples} samples every ${INTERVAL_S} s (${r.window.start} → ${r.window.end})`],
    ["RSS min / median / max", `${f1(r.rssMiB.min)} / ${f1(r.rssMiB.median)} / ${f1(r.rssMiB.max)} MiB`],
    [`RSS first ${edge} s → last ${edge} s (medians)`, `${f1(r.rssMiB.firstMedian)} → ${f1(r.rssMiB.lastMedian)} MiB (${r.rssMiB.growth >= 0 ? "+" : ""}${f2(r.rssMiB.growth)} MiB, ${r.rssMiB.growthPct >= 0 ? "+" : ""}${f1(r.rssMiB.growthPct)} %)`],
    [`  of which RssAnon`, `${f1(r.rssMiB.anonFirstMedian)} → ${f1(r.rssMiB.anonLastMedian)} MiB`],
    ["peak RSS since start (VmHWM)", `${f1(r.rssMiB.peakHwm)} MiB (includes startup and join)`],
    ["threads", r.threads.min === r.threads.max ? `${r.threads.min}` : `${r.threads.min}–${r.threads.max}`],
    ["CPU time in window (utime+stime)", `${f2(r.cpu.seconds)} s (${r.cpu.ticks} ticks @ ${CLK_TCK} Hz)`],
    ["average CPU", `${f3(r.cpu.pctOfOneCore)} % of one core`],
    ["CPU per scheduled check (all CPU / checks)", `${f1(r.cpu.perCheckMs)} ms`],
    ["child-process CPU in window", `${f2(r.cpu.childSeconds)} s`],
    ["scheduled checks observed / expected", `${r.checks.observed} / ${r.checks.expected} (schedule "${SCHEDULE}")`],
    ["check lag after scheduled second (median / max)", `${f1(r.checks.lagMs.median)} / ${f1(r.checks.lagMs.max)} ms`],
    ["check outcomes", Object.entries(r.checks.actions).map(([k, v]) => `${k}=${v}`).join(", ") || "none logged"],
    ["renewals / errors since start (metrics; the join counts)", `${r.renewalsTotal} / ${r.renewalErrorsTotal}`],
    ["agent log lines in window", Object.entries(r.logLinesInWindow).map(([k, v]) => `${k}=${v}`).join(", ") || "none"],
    ["agent start → joined", `${f2(r.joinS)} s`],
    ["SIGTERM → exit", r.shutdown ? `${f1(r.shutdown.ms)} ms (code ${r.shutdown.code}, signal ${r.shutdown.signal})` : "n/a"],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  console.log(`agent idle resource use, renewal schedule running (${r.machine.cpus} × ${r.machine.model}, ${r.machine.memGiB} GiB, node ${r.machine.node}, Linux ${r.machine.kernel})`);
  console.log(`date:    ${r.date}`);
  console.log(`command: ${r.command}`);
  console.log(`agent:   ${r.agentCommand} (pid ${r.agentPid})`);
  console.log("");
  for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
  if (notable.length) {
    console.log("\nwarnings, errors and renewals logged in the window:");
    for (const l of notable) console.log(`  ${JSON.stringify(l)}`);
  }
}

try {
  await main();
} catch (e) {
  console.error(`bench-idle failed: ${(e as Error).message}`);
  if (rawStderr.length) console.error(`agent stderr:\n${rawStderr.join("")}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
