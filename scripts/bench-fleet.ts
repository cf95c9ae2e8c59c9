// Benchmark: a fleet of real agents on one control plane, loopback only. Measures
//   1. server RSS per fleet connection: the server's VmRSS after the joins, before any channel is
//      open, and again with every agent connected (and its hello recorded), divided by the agents;
//   2. a rotation campaign over the whole fleet, started the admin's way (`nodecert rotate --all
//      --max-in-flight K`), watched through the admin API `nodecert rotations` uses, timed with the
//      server's own timestamps (campaign created → last node acked with new serials);
//   3. trust-bundle push latency: the server sends its trust bundle to every connected agent (the
//      loop CaRotation runs in its prepare phase; there is no admin route for a bare push, so the
//      server process runs it on request over IPC) and times each agent's ack, which the agent
//      sends after checking and installing (fsync'd) the bundle.
// Processes: the server is scripts/bench-fleet-server.ts (runServer, what `nodecert server run`
// runs) so /proc shows it alone; the agents run in --agent-procs processes of
// scripts/bench-fleet-agents.ts (runAgent, many per process). The server directory is made with
// `nodecert server init`, the token with `nodecert token create --uses N`. Linux only (/proc).
// Usage: node --import tsx scripts/bench-fleet.ts [--agents 1000] [--max-in-flight 100]
//        [--agent-procs 2] [--join-concurrency 8] [--start-concurrency 50] [--pushes 3]
//        [--settle 3] [--campaign-timeout 900] [--keep] [--json]
import { execFile, fork, type ChildProcess } from "node:child_process";
import { mkdtempSync, openSync, readFileSync, readdirSync, rmSync, closeSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs, promisify } from "node:util";
import { adminGet } from "../src/cli/admin-client.js";
import type { AgentsReply, AgentsRequest } from "./bench-fleet-agents.js";
import type { PushResult, ServerReply, ServerRequest } from "./bench-fleet-server.js";
import { CLK_TCK, commandLine, readProcStatus } from "./proc-stats.js";

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const BIN = path.join(ROOT, "bin/nodecert");
const TSX = path.join(ROOT, "node_modules/tsx/dist/esm/index.mjs");

const { values: opts } = parseArgs({
  options: {
    agents: { type: "string", default: "1000" },
    "max-in-flight": { type: "string", default: "100" },
    "agent-procs": { type: "string", default: "2" },
    "join-concurrency": { type: "string", default: "8" },
    "start-concurrency": { type: "string", default: "50" },
    pushes: { type: "string", default: "3" },
    settle: { type: "string", default: "3" },
    "campaign-timeout": { type: "string", default: "900" },
    keep: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (opts.help) {
  console.log(
    "usage: node --import tsx scripts/bench-fleet.ts [--agents N=1000] [--max-in-flight K=100] [--agent-procs P=2]\n" +
      "         [--join-concurrency C=8] [--start-concurrency C=50] [--pushes N=3] [--settle S=3]\n" +
      "         [--campaign-timeout S=900] [--keep] [--json]\n" +
      "  --keep leaves the temp directory (server dir, node roots, logs) in place and prints its path",
  );
  process.exit(0);
}
const int = (name: string, min: number): number => {
  const v = (opts as unknown as Record<string, string>)[name];
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    console.error(`--${name} must be a whole number ≥ ${min}, got "${v}"`);
    process.exit(2);
  }
  return n;
};
const AGENTS = int("agents", 1);
const MAX_IN_FLIGHT = int("max-in-flight", 1);
const PROCS = Math.min(int("agent-procs", 1), AGENTS);
const JOIN_CONCURRENCY = int("join-concurrency", 1);
const START_CONCURRENCY = int("start-concurrency", 1);
const PUSHES = int("pushes", 0);
const SETTLE_S = int("settle", 0);
const CAMPAIGN_TIMEOUT_S = int("campaign-timeout", 1);
if (process.platform !== "linux") {
  console.error("bench-fleet reads /proc and runs on Linux only");
  process.exit(2);
}

const COMMAND = commandLine();
const say = (s: string) => {
  if (!opts.json) process.stderr.write(`[bench-fleet ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
/** A sleep that does not keep the process alive (for timeouts raced against real work). */
const deadline = (ms: number) => new Promise((r) => setTimeout(r, ms).unref());

// ---------- /proc ----------
interface ProcSample {
  rssKiB: number;
  anonKiB: number;
  hwmKiB: number;
  cpuTicks: number;
  fds: number;
}
function readProc(pid: number): ProcSample {
  const { rssKiB, anonKiB, hwmKiB, cpuTicks } = readProcStatus(pid);
  return { rssKiB, anonKiB, hwmKiB, cpuTicks, fds: readdirSync(`/proc/${pid}/fd`).length };
}
const fdLimit = (pid: number) => /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync(`/proc/${pid}/limits`, "utf8"))?.[1] ?? "?";

// ---------- stats ----------
const quantile = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] : NaN);
const dist = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, min: s[0] ?? NaN, p50: quantile(s, 0.5), p90: quantile(s, 0.9), p99: quantile(s, 0.99), max: s[s.length - 1] ?? NaN };
};
const f0 = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : "n/a");
const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "n/a");
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "n/a");
const mib = (kib: number) => kib / 1024;

// ---------- children over IPC ----------
type Reply = { type: string; seq?: number; error?: string };
/** A request as sent: the seq is added by Child.request. */
type Unsent<T> = T extends unknown ? Omit<T, "seq"> : never;
class Child<Req extends { seq: number }, Rep extends Reply> {
  private seq = 0;
  private readonly waiting = new Map<number, { resolve: (r: Rep) => void; reject: (e: Error) => void }>();
  exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly stderr: string[] = [];
  constructor(
    readonly name: string,
    readonly proc: ChildProcess,
    onOther: (m: Rep) => void = () => undefined,
  ) {
    proc.on("message", (m: Rep) => {
      const w = m.seq === undefined ? undefined : this.waiting.get(m.seq);
      if (!w) return onOther(m);
      this.waiting.delete(m.seq!);
      if (m.type === "error") w.reject(new Error(`${name}: ${m.error}`));
      else w.resolve(m);
    });
    proc.stderr?.setEncoding("utf8").on("data", (d: string) => this.stderr.push(d));
    proc.on("exit", (code, signal) => {
      this.exited = { code, signal };
      for (const w of this.waiting.values()) w.reject(new Error(`${name} exited (code ${code}, signal ${signal}) while a request was open: ${this.stderr.join("").trim().slice(-2000)}`));
      this.waiting.clear();
    });
  }
  get pid(): number {
    return this.proc.pid!;
  }
  request<T extends Rep["type"]>(req: Unsent<Req>, timeoutMs = 3_600_000): Promise<Extract<Rep, { type: T }>> {
    if (this.exited) return Promise.reject(new Error(`${this.name} has exited (code ${this.exited.code}): ${this.stderr.join("").trim().slice(-2000)}`));
    const seq = ++this.seq;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => (this.waiting.delete(seq), reject(new Error(`${this.name} did not answer "${(req as unknown as { type: string }).type}" within ${timeoutMs / 1000} s`))), timeoutMs);
      this.waiting.set(seq, { resolve: (r) => (clearTimeout(t), resolve(r as Extract<Rep, { type: T }>)), reject: (e) => (clearTimeout(t), reject(e)) });
      this.proc.send({ ...req, seq });
    });
  }
  async stop(graceful: () => Promise<unknown>): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((r) => this.proc.once("exit", () => r()));
    await Promise.race([graceful().catch(() => undefined), deadline(30_000)]);
    if (await Promise.race([exited.then(() => true), deadline(10_000).then(() => false)])) return;
    this.proc.kill("SIGKILL");
    await exited;
  }
}

const childEnv = () => {
  const env = { ...process.env };
  delete env.NOTIFY_SOCKET; // the agents must not talk to a systemd that runs this harness
  return env;
};
function forkTs(script: string, args: string[], stdout: number | "ignore", extraNodeArgs: string[] = []): ChildProcess {
  return fork(path.join(ROOT, "scripts", script), args, { cwd: ROOT, env: childEnv(), execArgv: ["--import", TSX, ...extraNodeArgs], stdio: ["ignore", stdout, "pipe", "ipc"] });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

async function nodecert(args: string[]): Promise<string> {
  try {
    const { stdout } = await promisify(execFile)(BIN, args, { cwd: ROOT, env: childEnv(), maxBuffer: 64 * 1024 * 1024, timeout: 120_000 });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`nodecert ${args.slice(0, 2).join(" ")} failed: ${(err.stderr || err.message).trim()}`, { cause: e });
  }
}

/** Counts a JSON log file's lines by level, and warn/error lines by message. */
function logSummary(file: string): { lines: number; levels: Record<string, number>; problems: Record<string, number> } {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return { lines: 0, levels: {}, problems: {} };
  }
  const levels: Record<string, number> = {};
  const problems: Record<string, number> = {};
  let lines = 0;
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    lines++;
    try {
      const l = JSON.parse(line) as { level?: string; message?: string; error?: string; reason?: string };
      levels[l.level ?? "?"] = (levels[l.level ?? "?"] ?? 0) + 1;
      if (l.level === "warn" || l.level === "error") {
        const k = `${l.level}: ${l.message}${l.error ? ` (${String(l.error).slice(0, 80)})` : l.reason ? ` (${String(l.reason).slice(0, 80)})` : ""}`;
        problems[k] = (problems[k] ?? 0) + 1;
      }
    } catch {
      levels["not JSON"] = (levels["not JSON"] ?? 0) + 1;
    }
  }
  return { lines, levels, problems };
}

// ---------- the run ----------
const tmp = mkdtempSync(path.join(os.tmpdir(), "nodecert-fleet-"));
let server: Child<ServerRequest, ServerReply> | undefined;
const agentProcs: Child<AgentsRequest, AgentsReply>[] = [];
let cleanedUp = false;

async function cleanup(): Promise<void> {
  if (cleanedUp) return;
  cleanedUp = true;
  await Promise.all(agentProcs.map((a) => a.stop(() => a.request({ type: "stop" }, 60_000))));
  await server?.stop(() => server!.request({ type: "close" }, 30_000));
  if (opts.keep) process.stderr.write(`[bench-fleet] kept ${tmp}\n`);
  else rmSync(tmp, { recursive: true, force: true });
}
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    say(`${sig}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

async function until<T>(what: string, timeoutS: number, check: () => Promise<T | undefined>, everyMs = 200): Promise<T> {
  const end = performance.now() + timeoutS * 1000;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (performance.now() > end) throw new Error(`timed out after ${timeoutS} s waiting for ${what}`);
    await sleep(everyMs);
  }
}

async function main() {
  const serverDir = path.join(tmp, "server");
  const port = await freePort();
  const url = `https://127.0.0.1:${port}`;

  // 1. The control plane, initialised by the CLI and run as its own process.
  const init = await nodecert(["server", "init", "--dir", serverDir, "--listen", `127.0.0.1:${port}`, "--san", "127.0.0.1", "localhost", "--allow-loopback-sans"]);
  const pin = /CA pin: (\S+)/.exec(init)?.[1];
  if (!pin) throw new Error(`could not read the CA pin from 'nodecert server init':\n${init}`);
  const serverLog = path.join(tmp, "server.log");
  const serverOut = openSync(serverLog, "a");
  let readyResolve!: (m: Extract<ServerReply, { type: "ready" }>) => void;
  let readyReject!: (e: Error) => void;
  const ready = new Promise<Extract<ServerReply, { type: "ready" }>>((r, j) => ((readyResolve = r), (readyReject = j)));
  // --expose-gc: figures are also read after a full collection, so garbage does not count as cost.
  server = new Child("server", forkTs("bench-fleet-server.ts", ["--dir", serverDir], serverOut, ["--expose-gc"]), (m) => {
    if (m.type === "ready") readyResolve(m);
    else if (m.type === "error") readyReject(new Error(`server: ${m.error}`));
  });
  closeSync(serverOut);
  server.proc.once("exit", (code) => readyReject(new Error(`the server exited (code ${code}) before it was ready: ${server!.stderr.join("").trim()}`)));
  await ready;
  const spid = server.pid;
  say(`server pid ${spid} listening on ${url}; open-files limit ${fdLimit(spid)}`);
  const sample = async (gc: boolean) => {
    if (gc) {
      await server!.request({ type: "gc" });
      await sleep(200);
    }
    return readProc(spid);
  };
  const stats = () => server!.request<"stats">({ type: "stats" });
  await sleep(SETTLE_S * 1000);
  const idle = { raw: await sample(false), gc: await sample(true) };

  // 2. One token for the whole fleet, made the admin's way.
  const token = (await nodecert(["token", "create", "--uses", String(AGENTS), "--ttl", "6h", "--dir", serverDir, "--server", url, "--description", "bench-fleet"])).trim();

  // 3. Joins (no channel yet), split over the agent processes.
  const names = Array.from({ length: AGENTS }, (_, i) => `fleet-${String(i).padStart(4, "0")}`);
  const progress = new Map<string, number>();
  let lastSaid = 0;
  for (let p = 0; p < PROCS; p++) {
    const child: Child<AgentsRequest, AgentsReply> = new Child(`agents-${p}`, forkTs("bench-fleet-agents.ts", [], "ignore"), (m) => {
      if (m.type !== "progress") return;
      progress.set(`${m.phase}-${p}`, m.done);
      const total = [...progress].filter(([k]) => k.startsWith(m.phase)).reduce((a, [, v]) => a + v, 0);
      if (performance.now() - lastSaid > 5000 || total === AGENTS) {
        lastSaid = performance.now();
        say(`${m.phase}: ${total}/${AGENTS}`);
      }
    });
    agentProcs.push(child);
  }
  const slices = agentProcs.map((_, p) => names.filter((_, i) => i % PROCS === p));
  say(`joining ${AGENTS} nodes from ${PROCS} process(es), ${JOIN_CONCURRENCY} at a time each`);
  const tJoin = performance.now();
  await Promise.all(
    agentProcs.map((a, p) =>
      a.request<"joined">({ type: "join", concurrency: JOIN_CONCURRENCY, setup: { server: url, pin, token, base: path.join(tmp, "nodes"), names: slices[p], logFile: path.join(tmp, `agents-${p}.log`) } }),
    ),
  );
  const joinS = (performance.now() - tJoin) / 1000;
  await sleep(SETTLE_S * 1000);
  const joined = { raw: await sample(false), gc: await sample(true) };

  // 4. Every agent's daemon starts and opens its channel.
  say(`starting ${AGENTS} agent daemons (${START_CONCURRENCY} at a time per process); each dials the channel`);
  const tConnect = performance.now();
  await Promise.all(agentProcs.map((a) => a.request<"started">({ type: "start", concurrency: START_CONCURRENCY })));
  const allConnected = async (what: string) =>
    until(what, 600, async () => {
      const s = await stats();
      return s.connected === AGENTS && s.helloed === AGENTS ? s : undefined;
    });
  await allConnected(`all ${AGENTS} agents connected with their hello recorded`);
  const connectS = (performance.now() - tConnect) / 1000;
  say(`all ${AGENTS} connected after ${f1(connectS)} s; settling ${SETTLE_S} s`);
  await sleep(SETTLE_S * 1000);
  const connected = { raw: await sample(false), gc: await sample(true) };
  const agentRss = agentProcs.map((a) => readProc(a.pid).rssKiB);

  // 5. A rotation campaign over the whole fleet, started and watched the admin's way.
  say(`rotate --all --max-in-flight ${MAX_IN_FLIGHT}`);
  const agentsCpu = () => agentProcs.reduce((a, p) => a + readProc(p.pid).cpuTicks, 0);
  const cpuBefore = readProc(spid).cpuTicks;
  const agentsCpuBefore = agentsCpu();
  const tCli = performance.now();
  const started = await nodecert(["rotate", "--all", "--max-in-flight", String(MAX_IN_FLIGHT), "--dir", serverDir, "--server", url, "--reason", "bench-fleet"]);
  const id = /started campaign (\w+)/.exec(started)?.[1];
  if (!id) throw new Error(`could not read the campaign id from 'nodecert rotate':\n${started}`);
  interface CampaignJson {
    campaign: { id: string; createdAt: string; state: string; finishedAt?: string };
    counts: Record<"pending" | "in-flight" | "done" | "failed", number>;
    nodes: { node: string; state: string; attempts: number; startedAt?: string; finishedAt?: string; lastError?: string }[];
  }
  let lastCounts = "";
  const done = await until(
    `campaign ${id} to finish`,
    CAMPAIGN_TIMEOUT_S,
    async () => {
      const s = (await adminGet(serverDir, `/v1/admin/campaigns/${id}`, url)) as CampaignJson;
      const c = `done ${s.counts.done}, in flight ${s.counts["in-flight"]}, pending ${s.counts.pending}, failed ${s.counts.failed}`;
      if (c !== lastCounts && performance.now() - lastSaid > 5000) {
        lastSaid = performance.now();
        say(`campaign ${id}: ${c}`);
      }
      lastCounts = c;
      return s.campaign.state === "done" ? s : undefined;
    },
    1000,
  );
  const observedS = (performance.now() - tCli) / 1000;
  const campaignCpuS = (readProc(spid).cpuTicks - cpuBefore) / CLK_TCK;
  const campaignAgentsCpuS = (agentsCpu() - agentsCpuBefore) / CLK_TCK;
  const createdMs = Date.parse(done.campaign.createdAt);
  const lastAckMs = Math.max(...done.nodes.map((n) => (n.finishedAt ? Date.parse(n.finishedAt) : NaN)).filter(Number.isFinite));
  const campaignS = (lastAckMs - createdMs) / 1000;
  const perNode = dist(done.nodes.filter((n) => n.startedAt && n.finishedAt && n.state === "done").map((n) => Date.parse(n.finishedAt!) - Date.parse(n.startedAt!)));
  const failedNodes = done.nodes.filter((n) => n.state === "failed").map((n) => `${n.node}: ${n.lastError}`);
  const retried = done.nodes.filter((n) => n.attempts > 1).length;
  say(`campaign ${id}: ${done.counts.done} done, ${done.counts.failed} failed, ${f1(campaignS)} s from creation to the last ack`);
  await allConnected(`all ${AGENTS} agents back on the channel with their new certificates`);
  const afterCampaign = await sample(false);

  // 6. Trust-bundle pushes to every connected agent.
  const pushes: PushResult[] = [];
  const pushCpu: { serverS: number; agentsS: number }[] = [];
  for (let i = 0; i < PUSHES; i++) {
    await sleep(SETTLE_S * 1000);
    await allConnected("every agent connected before the push");
    const cpu0 = { server: readProc(spid).cpuTicks, agents: agentsCpu() };
    const r = (await server.request<"push-bundle">({ type: "push-bundle", timeoutMs: 120_000 }, 180_000)).result;
    // Where the time went: CPU of the server and of the agent processes over the push.
    pushCpu.push({ serverS: (readProc(spid).cpuTicks - cpu0.server) / CLK_TCK, agentsS: (agentsCpu() - cpu0.agents) / CLK_TCK });
    const d = dist(r.acks.map((a) => a.sinceStartMs));
    say(`trust-bundle push ${i + 1}/${PUSHES}: ${r.acks.length}/${r.sent} acked ok, ${r.errors.length} errors, ${r.missing.length} missing; p50 ${f1(d.p50)} ms, p99 ${f1(d.p99)} ms`);
    pushes.push(r);
  }
  const end = readProc(spid);

  // ---------- figures ----------
  const perConn = (a: ProcSample, b: ProcSample) => (b.rssKiB - a.rssKiB) / AGENTS;
  const pooled = dist(pushes.flatMap((p) => p.acks.map((a) => a.sinceStartMs)));
  const pooledOwn = dist(pushes.flatMap((p) => p.acks.map((a) => a.sinceSendMs)));
  const result = {
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memGiB: Math.round(os.totalmem() / 1024 ** 3), node: process.version, kernel: os.release(), loadavg: os.loadavg() },
    command: COMMAND,
    settings: { agents: AGENTS, maxInFlight: MAX_IN_FLIGHT, agentProcs: PROCS, joinConcurrency: JOIN_CONCURRENCY, startConcurrency: START_CONCURRENCY, pushes: PUSHES, settleS: SETTLE_S, keyAlgorithm: "ECDSA-P256", heartbeatS: 30 },
    server: {
      pid: spid,
      openFilesLimit: fdLimit(spid),
      rssMiB: {
        idle: { raw: mib(idle.raw.rssKiB), gc: mib(idle.gc.rssKiB) },
        joined: { raw: mib(joined.raw.rssKiB), gc: mib(joined.gc.rssKiB) },
        connected: { raw: mib(connected.raw.rssKiB), gc: mib(connected.gc.rssKiB) },
        afterCampaign: mib(afterCampaign.rssKiB),
        end: mib(end.rssKiB),
        peak: mib(end.hwmKiB),
      },
      rssPerConnectionKiB: { raw: perConn(joined.raw, connected.raw), gc: perConn(joined.gc, connected.gc), fromIdleGc: perConn(idle.gc, connected.gc) },
      anonPerConnectionKiB: (connected.gc.anonKiB - joined.gc.anonKiB) / AGENTS,
      fds: { idle: idle.gc.fds, joined: joined.gc.fds, connected: connected.gc.fds },
    },
    join: { seconds: joinS, perSecond: AGENTS / joinS },
    connect: { seconds: connectS },
    agentProcesses: { rssMiB: agentRss.map(mib), perAgentKiB: agentRss.reduce((a, b) => a + b, 0) / AGENTS },
    campaign: {
      id,
      done: done.counts.done,
      failed: done.counts.failed,
      retried,
      failedNodes: failedNodes.slice(0, 20),
      createdToLastAckS: campaignS,
      rotationsPerSecond: done.counts.done / campaignS,
      cliToObservedDoneS: observedS,
      perNodeMs: perNode,
      serverCpuS: campaignCpuS,
      serverCpuMsPerRotation: (campaignCpuS * 1000) / Math.max(1, done.counts.done),
      agentsCpuS: campaignAgentsCpuS,
      agentsCpuMsPerRotation: (campaignAgentsCpuS * 1000) / Math.max(1, done.counts.done),
    },
    trustBundlePush: {
      pushes: pushes.map((p, i) => ({ ...pushCpu[i], sent: p.sent, acked: p.acks.length, errors: p.errors.length, missing: p.missing.length, sendLoopMs: p.sendLoopMs, latencyMs: dist(p.acks.map((a) => a.sinceStartMs)), errorSamples: p.errors.slice(0, 5), missingSamples: p.missing.slice(0, 5) })),
      pooledFromBroadcastStartMs: pooled,
      pooledFromOwnSendMs: pooledOwn,
    },
    logs: { server: logSummary(serverLog), agents: agentProcs.map((_, p) => logSummary(path.join(tmp, `agents-${p}.log`))) },
  };
  return result;
}

function print(r: Awaited<ReturnType<typeof main>>): void {
  const s = r.server;
  const c = r.campaign;
  const rows: [string, string][] = [
    ["agents / agent processes", `${r.settings.agents} / ${r.settings.agentProcs} (runAgent, ECDSA-P256, 30 s heartbeat, no-op schedule)`],
    ["joins (real join(), token from `token create --uses N`)", `${f1(r.join.seconds)} s, ${f1(r.join.perSecond)} joins/s (${r.settings.joinConcurrency} at a time per process)`],
    ["daemons started → all connected, hello recorded", `${f1(r.connect.seconds)} s`],
    ["server RSS idle / joined / connected (raw)", `${f1(s.rssMiB.idle.raw)} / ${f1(s.rssMiB.joined.raw)} / ${f1(s.rssMiB.connected.raw)} MiB`],
    ["server RSS idle / joined / connected (after GC)", `${f1(s.rssMiB.idle.gc)} / ${f1(s.rssMiB.joined.gc)} / ${f1(s.rssMiB.connected.gc)} MiB`],
    ["server RSS per connection (connected − joined)/N", `${f1(s.rssPerConnectionKiB.gc)} KiB after GC, ${f1(s.rssPerConnectionKiB.raw)} KiB raw`],
    ["  of which anonymous memory (after GC)", `${f1(s.anonPerConnectionKiB)} KiB`],
    ["  counting the joins too (connected − idle)/N, GC", `${f1(s.rssPerConnectionKiB.fromIdleGc)} KiB`],
    ["server open files idle / joined / connected", `${s.fds.idle} / ${s.fds.joined} / ${s.fds.connected} (limit ${s.openFilesLimit})`],
    ["server RSS after campaign / end / peak (VmHWM)", `${f1(s.rssMiB.afterCampaign)} / ${f1(s.rssMiB.end)} / ${f1(s.rssMiB.peak)} MiB`],
    [`rotate --all --max-in-flight ${r.settings.maxInFlight}: created → last ack`, `${f1(c.createdToLastAckS)} s, ${c.done} done, ${c.failed} failed, ${c.retried} retried`],
    ["  rotations per second", f1(c.rotationsPerSecond)],
    ["  per node, rotate sent → ack (p50 / p99 / max)", `${f0(c.perNodeMs.p50)} / ${f0(c.perNodeMs.p99)} / ${f0(c.perNodeMs.max)} ms`],
    ["  CLI started → `rotations` shows done (1 s polls)", `${f1(c.cliToObservedDoneS)} s`],
    ["  CPU during the campaign: server / agents", `${f1(c.serverCpuS)} s / ${f1(c.agentsCpuS)} s (${f1(c.serverCpuMsPerRotation)} / ${f1(c.agentsCpuMsPerRotation)} ms per rotation)`],
  ];
  r.trustBundlePush.pushes.forEach((p, i) =>
    rows.push([
      `trust-bundle push ${i + 1}: acked / sent`,
      `${p.acked} / ${p.sent} (${p.errors} errors, ${p.missing} missing), send loop ${f1(p.sendLoopMs)} ms, p50 ${f1(p.latencyMs.p50)} / p99 ${f1(p.latencyMs.p99)} / max ${f1(p.latencyMs.max)} ms, CPU server ${f2(p.serverS)} s + agents ${f2(p.agentsS)} s`,
    ]),
  );
  const pl = r.trustBundlePush.pooledFromBroadcastStartMs;
  if (pl.n) {
    rows.push(["push latency, broadcast start → ack (all pushes)", `p50 ${f1(pl.p50)} / p90 ${f1(pl.p90)} / p99 ${f1(pl.p99)} / max ${f1(pl.max)} ms (n=${pl.n})`]);
    const po = r.trustBundlePush.pooledFromOwnSendMs;
    rows.push(["push latency, that node's send → ack (all pushes)", `p50 ${f1(po.p50)} / p99 ${f1(po.p99)} ms`]);
    rows.push(["ratio p99 / p50 (broadcast start → ack)", f2(pl.p99 / pl.p50)]);
  }
  rows.push(["agent processes RSS", `${r.agentProcesses.rssMiB.map((x) => f0(x)).join(" + ")} MiB (${f0(r.agentProcesses.perAgentKiB)} KiB per agent)`]);
  const lv = (l: { levels: Record<string, number> }) => Object.entries(l.levels).map(([k, v]) => `${k}=${v}`).join(", ") || "none";
  rows.push(["server log lines", lv(r.logs.server)]);
  r.logs.agents.forEach((l, i) => rows.push([`agents-${i} log lines`, lv(l)]));
  const w = Math.max(...rows.map(([k]) => k.length));
  console.log(`fleet on one control plane, loopback (${r.machine.cpus} × ${r.machine.model}, ${r.machine.memGiB} GiB, node ${r.machine.node}, Linux ${r.machine.kernel})`);
  console.log(`date:    ${r.date} (load average at the end: ${r.machine.loadavg.map(f2).join(" ")})`);
  console.log(`command: ${r.command}`);
  console.log("push:    the server process sends its trust bundle to every connected node (CaRotation's prepare loop), asked over IPC: no admin route pushes a bare bundle");
  console.log("");
  for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
  const problems = [r.logs.server, ...r.logs.agents].flatMap((l, i) => Object.entries(l.problems).map(([k, v]) => `${i === 0 ? "server" : `agents-${i - 1}`}: ${v} × ${k}`));
  if (problems.length) {
    console.log("\nwarnings and errors logged:");
    for (const p of problems.slice(0, 30)) console.log(`  ${p}`);
  }
  if (c.failedNodes.length) console.log(`\nfailed nodes:\n  ${c.failedNodes.join("\n  ")}`);
  // The server's heap moves by several MiB between GCs; a small fleet's connections are lost in that.
  if (Math.abs(s.rssMiB.connected.gc - s.rssMiB.joined.gc) < 16) console.log(`\nnote: the RSS per connection is noise at ${r.settings.agents} agents (the heap moves by several MiB between collections); use ≥ 500 agents for that figure`);
}

try {
  const r = await main();
  if (opts.json) console.log(JSON.stringify(r, null, 2));
  else print(r);
} catch (e) {
  console.error(`bench-fleet failed: ${(e as Error).message}`);
  for (const ch of [server, ...agentProcs]) if (ch?.stderr.length) console.error(`${ch.name} stderr:\n${ch.stderr.join("").trim().slice(-4000)}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
