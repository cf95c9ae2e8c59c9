// Benchmark: what a `nodecert` process costs to start, and what the agent costs while it idles.
// Real processes of the program under test (`--bin`, default bin/nodecert), with medians over
// --runs runs (after one warm-up each), measured interleaved with `node -e 0` so every figure also
// prints as a ratio to a bare Node start measured in the same run on the same (shared) machine:
//   node -e 0 · nodecert --help · nodecert status · nodecert needs-renewal
//   agent start → ready (spawn until /readyz answers 200, on a node that has joined)
//   FIPS agent start → ready (fips: on; the FIPS provider from scripts/fips-provider.sh)
//   idle agent: RSS (/proc/<pid>/status VmRSS) and CPU (/proc/<pid>/stat) for --seconds
// Each short command also reports its CPU time and peak RSS (GNU time, when installed) and how
// many modules it loaded (scripts/module-trace.mjs). A control plane (`nodecert server run`) runs
// as its own process; everything is on loopback. Linux only.
//
// Usage: node --import tsx scripts/bench-start.ts [--runs 9] [--seconds 600] [--interval 5]
//          [--bin PATH]... [--no-fips] [--idle-join] [--scrape-every S] [--json]
//   --bin PATH        the nodecert executable to measure; give it twice to compare two trees in one run
//   --idle-join       the idle agent joins by itself first (the join's modules are then resident)
//   --scrape-every S  GET /metrics every S seconds during the idle window, as Prometheus would
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs, promisify } from "node:util";
import { CLK_TCK, commandLine, readProcStatus, shq } from "./proc-stats.js";

const execFileP = promisify(execFile);
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const TRACE = path.join(ROOT, "scripts/module-trace.mjs");

const { values: opts } = parseArgs({
  options: {
    runs: { type: "string", default: "9" },
    seconds: { type: "string", default: "600" },
    interval: { type: "string", default: "5" },
    bin: { type: "string", multiple: true },
    "no-fips": { type: "boolean", default: false },
    "idle-join": { type: "boolean", default: false },
    "scrape-every": { type: "string", default: "0" },
    json: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (opts.help) {
  console.log("usage: node --import tsx scripts/bench-start.ts [--runs 9] [--seconds 600] [--interval 5] [--bin PATH]... [--no-fips] [--idle-join] [--scrape-every S] [--json]");
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
const RUNS = num("runs", opts.runs!, 7);
const SECONDS = num("seconds", opts.seconds!, 0);
const INTERVAL = num("interval", opts.interval!, 0.1);
const SCRAPE = num("scrape-every", opts["scrape-every"]!, 0);
const BINS = (opts.bin?.length ? opts.bin : [path.join(ROOT, "bin/nodecert")]).map((b) => path.resolve(b));
if (process.platform !== "linux") {
  console.error("bench-start reads /proc and runs on Linux only");
  process.exit(2);
}
for (const b of BINS) if (!existsSync(b)) throw new Error(`--bin ${b} does not exist`);

const say = (s: string) => {
  if (!opts.json) process.stderr.write(`[bench-start] ${s}\n`);
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const tmp = mkdtempSync(path.join(os.tmpdir(), "nodecert-bench-start-"));
const children = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
  rmSync(tmp, { recursive: true, force: true });
});
process.on("SIGINT", () => process.exit(130));

const GNU_TIME = ["/usr/bin/time"].find((t) => existsSync(t));

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

interface Sample {
  wallMs: number;
  cpuMs?: number;
  peakRssKiB?: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end: wall time from spawn to exit; CPU and peak RSS from GNU time. */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Sample> {
  const timeFile = path.join(tmp, `time-${process.hrtime.bigint()}`);
  const [file, argv] = GNU_TIME ? [GNU_TIME, ["-o", timeFile, "-f", "%U %S %M", cmd, ...args]] : [cmd, args];
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(file, argv, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("exit", (code) => {
      const wallMs = performance.now() - t0;
      let cpuMs: number | undefined;
      let peakRssKiB: number | undefined;
      if (GNU_TIME && existsSync(timeFile)) {
        const last = readFileSync(timeFile, "utf8").trim().split("\n").pop()!.split(" ").map(Number);
        cpuMs = (last[0] + last[1]) * 1000;
        peakRssKiB = last[2];
        rmSync(timeFile, { force: true });
      }
      resolve({ wallMs, cpuMs, peakRssKiB, code, stdout, stderr });
    });
  });
}

/** How many modules one run of a command loads (file modules, Node built-ins). */
async function moduleCount(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ files: number; internals: number }> {
  const out = path.join(tmp, `trace-${process.hrtime.bigint()}.json`);
  await execFileP(cmd, args, { env: { ...process.env, ...env, NODE_OPTIONS: `--import ${TRACE}`, NODECERT_MODULE_TRACE: out } }).catch(() => undefined);
  if (!existsSync(out)) return { files: NaN, internals: NaN };
  const t = JSON.parse(readFileSync(out, "utf8")) as { files: string[]; internals: string[] };
  return { files: t.files.length, internals: t.internals.filter((m) => m.startsWith("NativeModule")).length };
}

const stats = (xs: number[]) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return { n: 0, min: NaN, median: NaN, max: NaN };
  const median = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { n: s.length, min: s[0], median, max: s[s.length - 1] };
};

// --- the control plane and one joined node per program under test -----------------------------
class Daemon {
  out = "";
  exited: Promise<number | null>;
  constructor(
    readonly child: ChildProcess,
    readonly t0 = performance.now(),
  ) {
    children.add(child);
    child.stdout?.on("data", (d) => (this.out += d));
    child.stderr?.on("data", (d) => (this.out += d));
    this.exited = new Promise((r) => child.once("exit", (c) => (children.delete(child), r(c))));
  }
  static start(bin: string, args: string[], env: NodeJS.ProcessEnv = {}): Daemon {
    return new Daemon(spawn(bin, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] }));
  }
  async waitFor(re: RegExp, ms = 60_000): Promise<RegExpExecArray> {
    const end = performance.now() + ms;
    for (;;) {
      const m = re.exec(this.out);
      if (m) return m;
      if (this.child.exitCode !== null) throw new Error(`exited (${this.child.exitCode}) before ${re}:\n${this.out}`);
      if (performance.now() > end) throw new Error(`timed out waiting for ${re}:\n${this.out}`);
      await sleep(10);
    }
  }
  async stop(): Promise<{ code: number | null; ms: number }> {
    const t0 = performance.now();
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGTERM");
    const code = await this.exited;
    return { code, ms: performance.now() - t0 };
  }
}

async function readyz(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/readyz`);
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

/** Spawn → /readyz 200, polled every 5 ms. */
async function agentStart(bin: string, config: string, port: number, env: NodeJS.ProcessEnv = {}): Promise<{ ms: number; agent: Daemon }> {
  const agent = Daemon.start(bin, ["agent", "--config", config], env);
  for (;;) {
    if (await readyz(port)) return { ms: performance.now() - agent.t0, agent };
    if (agent.child.exitCode !== null) throw new Error(`agent exited (${agent.child.exitCode}) before it was ready:\n${agent.out}`);
    if (performance.now() - agent.t0 > 60_000) throw new Error(`agent not ready after 60 s:\n${agent.out}`);
    await sleep(5);
  }
}

const yaml = (o: Record<string, unknown>) => Object.entries(o).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join("\n") + "\n";

async function fipsProviderDir(): Promise<string | undefined> {
  if (opts["no-fips"]) return undefined;
  try {
    const r = await execFileP("bash", [path.join(ROOT, "scripts/fips-provider.sh")], { maxBuffer: 1 << 24 });
    return r.stdout.trim().split("\n").pop();
  } catch (e) {
    say(`no FIPS provider (${(e as Error).message.split("\n")[0]}): FIPS figures skipped`);
    return undefined;
  }
}

interface Tree {
  bin: string;
  label: string;
  root: string;
  config: string;
  fipsConfig?: string;
  healthPort: number;
}

async function main(): Promise<void> {
  const provider = await fipsProviderDir();
  const setupBin = BINS[0];
  const serverDir = path.join(tmp, "server");
  const init = await execFileP(setupBin, ["server", "init", "--dir", serverDir, "--listen", "127.0.0.1:0", "--san", "127.0.0.1", "--allow-loopback-sans"]);
  const pin = /CA pin: (sha256:[0-9a-f]+)/.exec(init.stdout)![1];
  writeFileSync(path.join(serverDir, "server.yaml"), readFileSync(path.join(serverDir, "server.yaml"), "utf8") + "tokens: { maxFailures: 100000, failureWindow: 1m }\n");
  const server = Daemon.start(setupBin, ["server", "run", "--dir", serverDir, "--fips", "off"]);
  const url = `https://127.0.0.1:${(await server.waitFor(/"listen":"127\.0\.0\.1:(\d+)"/))[1]}`;
  const token = async (node?: string) => (await execFileP(setupBin, ["token", "create", "--dir", serverDir, "--server", url, ...(node ? ["--node", node] : [])])).stdout.trim();

  const trees: Tree[] = [];
  for (const [i, bin] of BINS.entries()) {
    const root = path.join(tmp, `node-${i}`);
    const j = await execFileP(bin, ["join", "--server", url, "--token", await token(), "--ca-cert-hash", pin, "--root", root, "--node-name", `bench-${i}`, "--address", "127.0.0.1", "--fips", "off"]);
    if (!/joined as/.test(j.stdout)) throw new Error(`join with ${bin} failed:\n${j.stdout}${j.stderr}`);
    const healthPort = await freePort();
    const base = { root, server: url, caCertHash: pin, nodeName: `bench-${i}`, addresses: { only: ["127.0.0.1"] }, healthListen: `127.0.0.1:${healthPort}`, hooks: [] };
    const config = path.join(tmp, `agent-${i}.yaml`);
    writeFileSync(config, yaml({ ...base, fips: "off" }), { mode: 0o600 });
    let fipsConfig: string | undefined;
    if (provider) {
      fipsConfig = path.join(tmp, `agent-${i}-fips.yaml`);
      writeFileSync(fipsConfig, yaml({ ...base, fips: "on", fipsProviderDir: provider }), { mode: 0o600 });
    }
    trees.push({ bin, label: opts.bin?.length ? path.relative(process.cwd(), bin) || bin : "nodecert", root, config, fipsConfig, healthPort });
  }

  // --- short commands and agent starts, interleaved ------------------------------------------
  type Case = { name: string; run: (t: Tree) => Promise<Sample>; trace?: (t: Tree) => [string, string[]] };
  const fipsEnv = { NODECERT_FIPS_SYSTEM_DIRS: "" };
  const agentCase = (fips: boolean) => async (t: Tree): Promise<Sample> => {
    const { ms, agent } = await agentStart(t.bin, fips ? t.fipsConfig! : t.config, t.healthPort, fipsEnv);
    const out = agent.out;
    await agent.stop();
    if (fips && !/"fips":true/.test(out)) throw new Error(`FIPS agent did not run on the FIPS provider:\n${out}`);
    return { wallMs: ms, code: 0, stdout: out, stderr: "" };
  };
  const cases: Case[] = [
    { name: "nodecert --help", run: (t) => timed(t.bin, ["--help"]), trace: (t) => [t.bin, ["--help"]] },
    { name: "nodecert status", run: (t) => timed(t.bin, ["status", "--root", t.root]), trace: (t) => [t.bin, ["status", "--root", t.root]] },
    { name: "nodecert needs-renewal", run: (t) => timed(t.bin, ["needs-renewal", "--config", t.config]), trace: (t) => [t.bin, ["needs-renewal", "--config", t.config]] },
    { name: "agent start → ready", run: agentCase(false) },
    ...(provider ? [{ name: "FIPS agent start → ready", run: agentCase(true) }] : []),
  ];
  const bare = () => timed(process.execPath, ["-e", "0"]);
  const results = new Map<string, Sample[]>();
  const add = (k: string, s: Sample) => results.set(k, [...(results.get(k) ?? []), s]);
  say(`${RUNS} runs (+1 warm-up) of ${cases.length + 1} cases × ${trees.length} tree(s)`);
  for (let r = 0; r <= RUNS; r++) {
    const b = await bare();
    if (r > 0) add("node -e 0", b);
    for (const c of cases) {
      for (const t of trees) {
        const s = await c.run(t);
        if (c.name.startsWith("nodecert ") && c.name !== "nodecert needs-renewal" && s.code !== 0 && !(c.name === "nodecert status" && s.code === 1)) {
          throw new Error(`${c.name} (${t.bin}) exited ${s.code}:\n${s.stdout}${s.stderr}`);
        }
        if (r > 0) add(`${t.label}: ${c.name}`, s);
      }
    }
    say(`run ${r}/${RUNS} done`);
  }
  const modules: Record<string, { files: number; internals: number }> = {};
  for (const c of cases) for (const t of trees) if (c.trace) modules[`${t.label}: ${c.name}`] = await moduleCount(...c.trace(t));
  modules["node -e 0"] = await moduleCount(process.execPath, ["-e", "0"]);

  const bareMedian = stats(results.get("node -e 0")!.map((s) => s.wallMs)).median;
  const rows = [...results.entries()].map(([name, ss]) => {
    const wall = stats(ss.map((s) => s.wallMs));
    return {
      name,
      n: wall.n,
      wallMedianMs: wall.median,
      wallMinMs: wall.min,
      wallMaxMs: wall.max,
      ratioToBare: wall.median / bareMedian,
      cpuMedianMs: stats(ss.map((s) => s.cpuMs ?? NaN)).median,
      peakRssMedianMiB: stats(ss.map((s) => (s.peakRssKiB ?? NaN) / 1024)).median,
      modules: modules[name],
    };
  });

  // --- idle --------------------------------------------------------------------------------
  const idle: Record<string, unknown>[] = [];
  if (SECONDS > 0) {
    for (const t of trees) {
      let config = t.config;
      if (opts["idle-join"]) {
        const root = path.join(tmp, `idle-join-${t.healthPort}`);
        const tokenFile = path.join(tmp, `token-${t.healthPort}`);
        writeFileSync(tokenFile, (await token()) + "\n", { mode: 0o600 });
        config = path.join(tmp, `idle-join-${t.healthPort}.yaml`);
        writeFileSync(config, yaml({ root, server: url, caCertHash: pin, tokenFile, nodeName: `idle-${t.healthPort}`, addresses: { only: ["127.0.0.1"] }, healthListen: `127.0.0.1:${t.healthPort}`, hooks: [], fips: "off" }), { mode: 0o600 });
      }
      const started: { ms: number; agent: Daemon } = await agentStart(t.bin, config, t.healthPort);
      const pid = started.agent.child.pid!;
      const comm = readFileSync(`/proc/${pid}/comm`, "utf8").trim();
      if (comm !== "node") throw new Error(`pid ${pid} is "${comm}", not the agent's node process`);
      await sleep(2000); // the first check and the channel's hello settle
      say(`${t.label}: idle agent pid ${pid}, sampling for ${SECONDS} s every ${INTERVAL} s${SCRAPE ? `, /metrics every ${SCRAPE} s` : ""}`);
      const samples: { t: number; rssKiB: number; anonKiB: number; cpuTicks: number }[] = [];
      const t0 = performance.now();
      let nextScrape = SCRAPE ? 0 : Infinity;
      let scrapes = 0;
      const n = Math.floor(SECONDS / INTERVAL + 1e-9);
      for (let k = 0; k <= n; k++) {
        const at = t0 + k * INTERVAL * 1000;
        while (t0 + nextScrape * 1000 < at) {
          await sleep(t0 + nextScrape * 1000 - performance.now());
          await fetch(`http://127.0.0.1:${t.healthPort}/metrics`).then((r) => r.text());
          scrapes++;
          nextScrape += SCRAPE;
        }
        await sleep(at - performance.now());
        if (started.agent.child.exitCode !== null) throw new Error(`agent exited during the idle window:\n${started.agent.out}`);
        const p = readProcStatus(pid);
        samples.push({ t: (performance.now() - t0) / 1000, rssKiB: p.rssKiB, anonKiB: p.anonKiB, cpuTicks: p.cpuTicks });
      }
      const wallS = samples[samples.length - 1].t - samples[0].t;
      const cpuS = (samples[samples.length - 1].cpuTicks - samples[0].cpuTicks) / CLK_TCK;
      const rss = stats(samples.map((s) => s.rssKiB / 1024));
      const stop = await started.agent.stop();
      idle.push({
        tree: t.label,
        joinedInProcess: !!opts["idle-join"],
        seconds: wallS,
        samples: samples.length,
        scrapes,
        rssMiB: rss,
        rssAnonMedianMiB: stats(samples.map((s) => s.anonKiB / 1024)).median,
        cpuSeconds: cpuS,
        cpuPercentOfCore: wallS > 0 ? (cpuS / wallS) * 100 : NaN,
        stop,
      });
    }
  }
  await server.stop();

  const report = { command: commandLine(), date: new Date().toISOString(), node: process.version, loadavg: os.loadavg(), bins: BINS, bareMedianMs: bareMedian, rows, idle };
  if (opts.json) return void console.log(JSON.stringify(report, null, 2));
  const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "-");
  console.log(`command: ${report.command}`);
  console.log(`date: ${report.date}  node ${report.node}  load average ${report.loadavg.map((x) => x.toFixed(2)).join(" ")}`);
  console.log(`\n| case | n | median wall | min–max | × node -e 0 | CPU (median) | peak RSS (median) | modules (files / built-in) |`);
  console.log(`|---|---|---|---|---|---|---|---|`);
  for (const r of rows) {
    console.log(
      `| ${r.name} | ${r.n} | ${f(r.wallMedianMs)} ms | ${f(r.wallMinMs)}–${f(r.wallMaxMs)} ms | ${f(r.ratioToBare, 2)} | ${f(r.cpuMedianMs)} ms | ${f(r.peakRssMedianMiB)} MiB | ${r.modules ? `${r.modules.files} / ${r.modules.internals}` : "-"} |`,
    );
  }
  const byName = new Map(rows.map((r) => [r.name, r]));
  for (const t of trees) {
    const d = byName.get(`${t.label}: agent start → ready`);
    const fp = byName.get(`${t.label}: FIPS agent start → ready`);
    if (d && fp) console.log(`\n${t.label}: FIPS agent start / default agent start = ${f(fp.wallMedianMs / d.wallMedianMs, 2)}`);
  }
  for (const i of idle) {
    const r = i.rssMiB as ReturnType<typeof stats>;
    console.log(
      `\n${i.tree}: idle agent${i.joinedInProcess ? " (joined in this process)" : " (started on a joined node)"} over ${f(i.seconds as number, 0)} s, ${i.samples} samples${i.scrapes ? `, ${i.scrapes} /metrics scrapes` : ""}: ` +
        `RSS min/median/max ${f(r.min)} / ${f(r.median)} / ${f(r.max)} MiB (anon median ${f(i.rssAnonMedianMiB as number)} MiB), ` +
        `CPU ${f(i.cpuSeconds as number, 2)} s = ${f(i.cpuPercentOfCore as number, 3)} % of one core; SIGTERM → exit ${f((i.stop as { ms: number }).ms, 0)} ms (code ${(i.stop as { code: number }).code})`,
    );
  }
  console.log(`\nprogram(s): ${BINS.map((b) => shq(b)).join(" ")}`);
}

main().catch((e) => {
  console.error(`bench-start: ${(e as Error).stack ?? e}`);
  process.exit(1);
});
