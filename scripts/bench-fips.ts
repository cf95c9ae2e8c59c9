// Benchmark: the FIPS provider build, and join and renewal wall times in FIPS mode vs the default
// provider, with real processes (`nodecert server run` and `nodecert agent`, --fips on vs off).
// Loopback only.
//
// Usage: node --import tsx scripts/bench-fips.ts [--joins N] [--renewals N] [--cold]
//   --cold   also time a cold provider build into a temporary cache (needs the network)
//
// Per mode it starts one server, then N agents that each join by themselves (timed from spawn to
// "agent started" = process start incl. the FIPS re-exec and self-test, and from there to
// "joined"), then N forced renewals of both certificates through one agent's control socket
// (the agent's own work: two key pairs, two CSRs, an mTLS request, an fsync'd install), and N
// `nodecert join` processes (a default-mode client) against that server.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { promisify } from "node:util";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import YAML from "yaml";
import { requestRenewal } from "../src/agent/http/control.js";

const exec = promisify(execFile);
const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const JOINS = arg("--joins", 6);
const RENEWALS = arg("--renewals", 12);
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const BIN = path.join(ROOT, "bin/nodecert");
const tmp = mkdtempSync(path.join(os.tmpdir(), "nodecert-bench-fips-"));
const children = new Set<ChildProcess>();
process.on("exit", () => children.forEach((c) => c.kill("SIGKILL")));

// --- the provider ---------------------------------------------------------------------------
const t0 = performance.now();
const built = await exec("bash", [path.join(ROOT, "scripts/fips-provider.sh")], { maxBuffer: 1 << 24 });
const scriptSeconds = (performance.now() - t0) / 1000;
const providerDir = built.stdout.trim().split("\n").pop()!;
const recorded = Number(readFileSync(path.join(providerDir, "build-seconds"), "utf8"));
const version = readFileSync(path.join(providerDir, "VERSION"), "utf8").trim();
let cold: number | undefined;
if (process.argv.includes("--cold")) {
  const cache = path.join(tmp, "cold-cache");
  const c0 = performance.now();
  await exec("bash", [path.join(ROOT, "scripts/fips-provider.sh")], { env: { ...process.env, NODECERT_FIPS_CACHE: cache }, maxBuffer: 1 << 24 });
  cold = (performance.now() - c0) / 1000;
}

// --- processes ------------------------------------------------------------------------------
class Proc {
  out = "";
  child: ChildProcess;
  constructor(args: string[]) {
    this.child = spawn(BIN, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NODECERT_FIPS_SYSTEM_DIRS: "" } });
    children.add(this.child);
    this.child.stdout!.on("data", (d) => (this.out += d));
    this.child.stderr!.on("data", (d) => (this.out += d));
  }
  waitFor(re: RegExp, ms = 60_000): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out waiting for ${re}:\n${this.out}`)), ms);
      const check = () => {
        const m = re.exec(this.out);
        if (m) {
          clearTimeout(t);
          this.child.stdout!.off("data", check);
          resolve(m);
        }
      };
      this.child.stdout!.on("data", check);
      check();
    });
  }
  async stop(): Promise<void> {
    const done = new Promise((r) => this.child.once("exit", r));
    this.child.kill("SIGTERM");
    await done;
    children.delete(this.child);
  }
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { n: s.length, min: s[0], median: q(0.5), p90: q(0.9), max: s[s.length - 1] };
};

type Mode = "default" | "fips";
const results: Record<string, ReturnType<typeof stats>> = {};

for (const mode of ["default", "fips"] as Mode[]) {
  const fipsFlag = mode === "fips" ? "on" : "off";
  const dir = path.join(tmp, mode, "server");
  const init = await exec(BIN, ["server", "init", "--dir", dir, "--listen", "127.0.0.1:0", "--san", "127.0.0.1", "--allow-loopback-sans"]);
  const pin = /CA pin: (sha256:[0-9a-f]+)/.exec(init.stdout)![1];
  writeFileSync(path.join(dir, "server.yaml"), readFileSync(path.join(dir, "server.yaml"), "utf8") + `fipsProviderDir: ${providerDir}\ntokens: { maxFailures: 100000, failureWindow: 1m }\n`);
  const s0 = performance.now();
  const server = new Proc(["server", "run", "--dir", dir, "--fips", fipsFlag]);
  const m = await server.waitFor(/"listen":"127\.0\.0\.1:(\d+)","message":"control plane listening"/);
  const serverStart = performance.now() - s0;
  if (mode === "fips" && !/"fips":true/.test(server.out)) throw new Error(`server not in FIPS mode:\n${server.out}`);
  const url = `https://127.0.0.1:${m[1]}`;
  const token = (await exec(BIN, ["token", "create", "--dir", dir, "--server", url, "--uses", String(2 * JOINS + 4)])).stdout.trim();

  // Agents that join by themselves.
  const starts: number[] = [];
  const joins: number[] = [];
  let renewAgent: { proc: Proc; cfg: string; root: string } | undefined;
  for (let i = 0; i < JOINS + 1; i++) {
    const root = path.join(tmp, mode, `node-${i}`);
    const tokenFile = path.join(tmp, mode, `token-${i}`);
    writeFileSync(tokenFile, token + "\n");
    chmodSync(tokenFile, 0o600);
    const cfg = path.join(tmp, mode, `agent-${i}.yaml`);
    writeFileSync(cfg, YAML.stringify({ root, server: url, caCertHash: pin, tokenFile, nodeName: `${mode}-${i}`, addresses: { only: ["127.0.0.1"] }, healthListen: "127.0.0.1:0", hooks: [], fips: fipsFlag, fipsProviderDir: providerDir }));
    const a0 = performance.now();
    const agent = new Proc(["agent", "--config", cfg]);
    await agent.waitFor(/"message":"agent started"/);
    const a1 = performance.now();
    await agent.waitFor(/"message":"joined"/);
    const a2 = performance.now();
    if (mode === "fips" && !/"fips":true/.test(agent.out)) throw new Error(`agent not in FIPS mode:\n${agent.out}`);
    if (i > 0) {
      // the first one warms the server
      starts.push(a1 - a0);
      joins.push(a2 - a1);
    }
    if (i === JOINS) renewAgent = { proc: agent, cfg, root };
    else await agent.stop();
  }
  results[`${mode}: agent start (spawn → started)`] = stats(starts);
  results[`${mode}: agent join (started → joined)`] = stats(joins);
  results[`${mode}: agent spawn → joined`] = stats(starts.map((s, i) => s + joins[i]));

  // Renewals by a running agent, through its control socket.
  const sock = path.join(renewAgent!.root, "var/lib/nodecert/control.sock");
  if (!existsSync(sock)) throw new Error(`no control socket at ${sock}`);
  const renewals: number[] = [];
  for (let r = 0; r < RENEWALS + 1; r++) {
    const r0 = performance.now();
    const out = await requestRenewal(sock, ["client", "serving"], true);
    if (!out || out.error || out.renewed.length !== 2) throw new Error(`renewal failed: ${JSON.stringify(out)}`);
    if (r > 0) renewals.push(performance.now() - r0);
  }
  results[`${mode}: renewal (client+serving)`] = stats(renewals);
  await renewAgent!.proc.stop();

  // A default-mode `nodecert join` process against this server (the server's side of FIPS).
  const cli: number[] = [];
  for (let i = 0; i < JOINS; i++) {
    const j0 = performance.now();
    await exec(BIN, ["join", "--server", url, "--token", token, "--ca-cert-hash", pin, "--root", path.join(tmp, mode, `cli-${i}`), "--node-name", `${mode}-cli-${i}`, "--address", "127.0.0.1"]);
    cli.push(performance.now() - j0);
  }
  results[`${mode}: nodecert join process`] = stats(cli);
  results[`${mode}: server start (spawn → listening)`] = stats([serverStart]);
  await server.stop();
}
rmSync(tmp, { recursive: true, force: true });

const fmt = (ms: number) => `${ms.toFixed(1)} ms`;
console.log(`FIPS provider: openssl ${version} (Debian source), fips.so built by scripts/fips-provider.sh`);
console.log(`  recorded build time (cache/build-seconds, includes apt-get source): ${recorded} s`);
console.log(`  fips-provider.sh with a warm cache (verify + reuse): ${scriptSeconds.toFixed(2)} s`);
if (cold !== undefined) console.log(`  cold build into an empty cache (this run): ${cold.toFixed(1)} s`);
console.log(`\nwall times, ${os.cpus().length} × ${os.cpus()[0].model}, node ${process.version} (OpenSSL ${process.versions.openssl})`);
console.log("case                                        n   min         median      p90         max");
for (const [k, s] of Object.entries(results)) {
  console.log(`${k.padEnd(42)}  ${String(s.n).padEnd(3)} ${fmt(s.min).padEnd(11)} ${fmt(s.median).padEnd(11)} ${fmt(s.p90).padEnd(11)} ${fmt(s.max)}`);
}
const ratio = (k: string) => (results[`fips: ${k}`].median / results[`default: ${k}`].median).toFixed(2);
console.log("\nFIPS / default (medians):");
for (const k of ["agent start (spawn → started)", "agent join (started → joined)", "agent spawn → joined", "renewal (client+serving)", "nodecert join process", "server start (spawn → listening)"]) {
  console.log(`  ${k.padEnd(36)} ${ratio(k)}`);
}
