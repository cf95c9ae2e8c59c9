// Benchmark: the issuance hot path against cfssl, side by side in one run.
//
// Drives `cfssl serve` (Debian golang-cfssl; plain HTTP, no auth, no persistence) and
// `nodecert server run` (bin/nodecert: the shipped dist/, TLS 1.3 + mTLS, policy, lineage, SQLite +
// audit) with the same pre-made ECDSA P-256 CSRs over keep-alive connections, one connection per
// concurrent client, at each concurrency level. nodecert clients are joined nodes renewing with their
// own client certificate, as an agent does. Prints certs/s, p50/p99, server CPU per certificate (all
// threads of the server process, from /proc/<pid>/task/*/schedstat) and RSS (idle and peak), and the
// ratio nodecert/cfssl. Then a client + serving renewal per request and the join path (nodecert only).
// Installs nothing: without cfssl on PATH the cfssl rows are skipped (and so are the ratios).
//
// Usage: npm run build && node --import tsx scripts/bench-issue.ts [--requests N] [--conc 1,8,32]
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { randomBytes } from "node:crypto";
import { initServer } from "../src/server/init.js";
import { serverPaths } from "../src/server/paths.js";
import { SqliteStore } from "../src/server/store/sqlite.js";
import { generateToken, hashSecret, parseToken } from "../src/server/tokens.js";
import { createNodeCsr } from "../src/pki/csr.js";
import { exportPrivateKeyPem, generateKeyPair } from "../src/pki/keys.js";
import { commandLine, readProcStatus } from "./proc-stats.js";

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : def;
};
const REQUESTS = Number(arg("--requests", "400"));
const LEVELS = arg("--conc", "1,8,32").split(",").map(Number);
const JOINS = Number(arg("--joins", "64"));
const MAX_CONC = Math.max(...LEVELS);
const CSRS_PER_NODE = 4;
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const BIN = path.join(root, "bin/nodecert");

const tmp = mkdtempSync(path.join(os.tmpdir(), "nodecert-bench-issue-"));
const random = (n: number) => randomBytes(n);

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });

const hasCfssl = (() => {
  try {
    execFileSync("cfssl", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

/** CPU time of every thread of a process, in ns (schedstat's first field). */
function cpuNs(pid: number): number {
  let total = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // a thread that exited between the listing and the read
    }
  }
  return total;
}

async function waitFor(what: string, fn: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

interface Level {
  conc: number;
  n: number;
  certsPerReq: number;
  certsPerSec: number;
  p50: number;
  p99: number;
  cpuMsPerCert: number;
  rssIdleMiB: number;
  rssPeakMiB: number;
  errors: number;
}

/** Runs `total` requests over `conc` workers; each worker owns one keep-alive connection. */
async function drive(pid: number, conc: number, total: number, certsPerReq: number, request: (worker: number, i: number) => Promise<void>): Promise<Level> {
  const rssIdle = readProcStatus(pid).rssKiB;
  let rssPeak = rssIdle;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, readProcStatus(pid).rssKiB)), 20);
  // One warm-up request per worker opens its connection (the TLS handshake is not what is measured).
  await Promise.all(Array.from({ length: conc }, (_, w) => request(w, 0)));
  const lat: number[] = [];
  let next = 0;
  let errors = 0;
  const cpu0 = cpuNs(pid);
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: conc }, async (_, w) => {
      for (let i = next++; i < total; i = next++) {
        const s = performance.now();
        try {
          await request(w, i + 1);
          lat.push(performance.now() - s);
        } catch (e) {
          if (errors++ === 0) console.error(`  first error: ${(e as Error).message}`);
        }
      }
    }),
  );
  const wall = performance.now() - t0;
  const cpu = cpuNs(pid) - cpu0;
  clearInterval(sampler);
  rssPeak = Math.max(rssPeak, readProcStatus(pid).rssKiB);
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN;
  const certs = lat.length * certsPerReq;
  return { conc, n: lat.length, certsPerReq, certsPerSec: (certs / wall) * 1000, p50: q(0.5), p99: q(0.99), cpuMsPerCert: cpu / 1e6 / certs, rssIdleMiB: rssIdle / 1024, rssPeakMiB: rssPeak / 1024, errors };
}

function post(agent: http.Agent | https.Agent, url: string, body: string, secure: boolean): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = (secure ? https : http).request(
      { method: "POST", host: u.hostname, port: u.port, path: u.pathname, agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } },
      (res) => {
        let data = "";
        res.setEncoding("utf8");
        res.on("data", (d) => (data += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: data }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

// ---- the nodes: keys and pre-made CSRs (the same CSR texts go to both servers) ----
interface BenchNode {
  name: string;
  address: string;
  keyPem: string;
  clientCsrs: string[];
  servingCsrs: string[];
  certPem?: string;
  agent?: https.Agent;
}
console.error(`preparing ${MAX_CONC} nodes × ${CSRS_PER_NODE} CSRs …`);
const nodes: BenchNode[] = [];
for (let i = 0; i < MAX_CONC; i++) {
  const name = `bench-${i}`;
  // Each node has its own loopback address: serving SANs are unique per node, and the join address counts.
  const address = `127.0.1.${i + 1}`;
  const keys = await generateKeyPair("ECDSA-P256");
  const clientCsrs: string[] = [];
  const servingCsrs: string[] = [];
  for (let k = 0; k < CSRS_PER_NODE; k++) {
    clientCsrs.push(await createNodeCsr({ kind: "client", nodeName: name, keys }));
    servingCsrs.push(await createNodeCsr({ kind: "serving", nodeName: name, keys, sans: [address] }));
  }
  nodes.push({ name, address, keyPem: await exportPrivateKeyPem(keys.privateKey), clientCsrs, servingCsrs });
}
// Nodes that only join (the join path): a name and an address of their own each.
const JOIN_LEVELS = LEVELS.filter((c) => c > 1).length;
const joiners: BenchNode[] = [];
for (let i = 0; i < (JOINS + MAX_CONC) * JOIN_LEVELS && i < 250; i++) {
  const name = `joiner-${i}`;
  const address = `127.0.2.${i + 1}`;
  const keys = await generateKeyPair("ECDSA-P256");
  joiners.push({ name, address, keyPem: "", clientCsrs: [await createNodeCsr({ kind: "client", nodeName: name, keys })], servingCsrs: [await createNodeCsr({ kind: "serving", nodeName: name, keys, sans: [address] })] });
}
const facts = (n: BenchNode) => ({ hostname: n.name, addresses: [n.address], agentVersion: "bench-issue" });

const results: { server: string; what: string; level: Level }[] = [];

// ---- cfssl ----
async function benchCfssl(): Promise<void> {
  const dir = path.join(tmp, "cfssl");
  execFileSync("mkdir", ["-p", dir]);
  execFileSync("openssl", ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", path.join(dir, "ca-key.pem")]);
  execFileSync("openssl", ["req", "-x509", "-new", "-key", path.join(dir, "ca-key.pem"), "-subj", "/CN=bench-cfssl-ca", "-days", "3650", "-out", path.join(dir, "ca.pem")]);
  writeFileSync(path.join(dir, "config.json"), JSON.stringify({ signing: { default: { expiry: "8760h", usages: ["digital signature", "client auth"] } } }));
  const port = await freePort();
  const child = spawn("cfssl", ["serve", "-address", "127.0.0.1", "-port", String(port), "-ca", path.join(dir, "ca.pem"), "-ca-key", path.join(dir, "ca-key.pem"), "-config", path.join(dir, "config.json"), "-loglevel", "5"], { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  child.stderr!.on("data", (d) => (err = (err + d).slice(-4000)));
  try {
    const url = `http://127.0.0.1:${port}/api/v1/cfssl/sign`;
    await waitFor("cfssl serve", async () => (await post(new http.Agent(), url, JSON.stringify({ certificate_request: nodes[0].clientCsrs[0] }), false)).status === 200);
    for (const conc of LEVELS) {
      const agents = Array.from({ length: conc }, () => new http.Agent({ keepAlive: true, maxSockets: 1 }));
      const level = await drive(child.pid!, conc, REQUESTS, 1, async (w, i) => {
        const r = await post(agents[w], url, JSON.stringify({ certificate_request: nodes[w].clientCsrs[i % CSRS_PER_NODE] }), false);
        if (r.status !== 200 || !(JSON.parse(r.body) as { success: boolean }).success) throw new Error(`cfssl ${r.status}: ${r.body.slice(0, 200)}`);
      });
      agents.forEach((a) => a.destroy());
      results.push({ server: "cfssl", what: "client", level });
      console.error(`  cfssl conc ${conc}: ${level.certsPerSec.toFixed(0)} certs/s`);
    }
  } finally {
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
    if (child.exitCode && child.exitCode !== 0 && err) console.error(err);
  }
}

// ---- nodecert ----
async function benchNodecert(): Promise<void> {
  const dir = path.join(tmp, "nodecert");
  const port = await freePort();
  const init = await initServer({ dir, listen: `127.0.0.1:${port}`, sans: ["127.0.0.1"], allowLoopbackSans: true, now: new Date(), random });
  const paths = serverPaths(dir);
  const caBundle = readFileSync(paths.caBundle, "utf8");
  // One unbound token with enough uses for every join.
  const token = generateToken(random);
  const { id, secret } = parseToken(token)!;
  const store = new SqliteStore(paths.db);
  await store.insertToken({ id, secretHash: hashSecret(secret), usesLeft: 100_000, expiresAt: new Date(Date.now() + 3600_000), createdAt: new Date() });
  await store.close();
  // BENCH_SERVER_NODE_ARGS (e.g. "--cpu-prof"): run dist/ with these node options, to profile the server.
  const nodeArgs = process.env.BENCH_SERVER_NODE_ARGS?.split(" ").filter(Boolean);
  const [cmd, argv] = nodeArgs ? [process.execPath, [...nodeArgs, path.join(root, "dist/cli/main.js")]] : [BIN, []];
  const child: ChildProcess = spawn(cmd, [...argv, "server", "run", "--dir", dir], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d) => (out = (out + d).slice(-8000)));
  child.stderr!.on("data", (d) => (out = (out + d).slice(-8000)));
  const url = `https://127.0.0.1:${port}`;
  const tlsBase = { ca: caBundle, minVersion: "TLSv1.3" as const, maxVersion: "TLSv1.3" as const, keepAlive: true, maxSockets: 1 };
  try {
    await waitFor("nodecert server run", async () => out.includes('"control plane listening"'), 60_000);
    const pid = child.pid!;
    const joinBody = (n: BenchNode, k: number) => JSON.stringify({ v: 1, nodeName: n.name, facts: facts(n), csrs: { client: n.clientCsrs[k % CSRS_PER_NODE], serving: n.servingCsrs[k % CSRS_PER_NODE] } });
    const joinOnce = async (n: BenchNode, agent: https.Agent, k: number) => {
      const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const s = joinBody(n, k);
        const req = https.request({ method: "POST", host: "127.0.0.1", port, path: "/v1/join", agent, localAddress: n.address, headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "content-length": Buffer.byteLength(s) } }, (res) => {
          let d = "";
          res.setEncoding("utf8");
          res.on("data", (x) => (d += x));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: d }));
        });
        req.on("error", reject);
        req.end(s);
      });
      if (r.status !== 200) throw new Error(`join ${r.status}: ${r.body.slice(0, 300)}`);
      return JSON.parse(r.body) as { certificates: { client: string; serving: string } };
    };
    // Join every benchmark node (their certificates renew below).
    for (const n of nodes) {
      const a = new https.Agent({ ...tlsBase, localAddress: n.address } as https.AgentOptions);
      const j = await joinOnce(n, a, 0);
      a.destroy();
      n.certPem = j.certificates.client;
      n.agent = new https.Agent({ ...tlsBase, cert: n.certPem, key: n.keyPem, localAddress: n.address } as https.AgentOptions);
    }
    const renew = async (n: BenchNode, i: number, kinds: ("client" | "serving")[]) => {
      const csrs: Record<string, string> = {};
      if (kinds.includes("client")) csrs.client = n.clientCsrs[i % CSRS_PER_NODE];
      if (kinds.includes("serving")) csrs.serving = n.servingCsrs[i % CSRS_PER_NODE];
      const r = await post(n.agent!, `${url}/v1/renew`, JSON.stringify({ v: 1, facts: facts(n), csrs }), true);
      if (r.status !== 200) throw new Error(`renew ${r.status}: ${r.body.slice(0, 300)}`);
    };
    for (const conc of LEVELS) {
      const level = await drive(pid, conc, REQUESTS, 1, (w, i) => renew(nodes[w], i, ["client"]));
      results.push({ server: "nodecert", what: "client", level });
      console.error(`  nodecert conc ${conc}: ${level.certsPerSec.toFixed(0)} certs/s`);
    }
    for (const conc of LEVELS) {
      const level = await drive(pid, conc, Math.ceil(REQUESTS / 2), 2, (w, i) => renew(nodes[w], i, ["client", "serving"]));
      results.push({ server: "nodecert", what: "client+serving", level });
    }
    // The join path: a new node per request (token check, policy, SAN context, two certificates,
    // the token spent in the commit), each on a new TLS connection, as a node joins once.
    let j = 0;
    for (const conc of LEVELS.filter((c) => c > 1)) {
      const level = await drive(pid, conc, JOINS, 2, async () => {
        const n = joiners[j++ % joiners.length];
        const a = new https.Agent({ ...tlsBase, localAddress: n.address } as https.AgentOptions);
        try {
          await joinOnce(n, a, 0);
        } finally {
          a.destroy();
        }
      });
      results.push({ server: "nodecert", what: "join (new TLS conn)", level });
    }
  } finally {
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
  }
  void init;
}

if (hasCfssl) await benchCfssl();
else console.error("cfssl is not on PATH (Debian package golang-cfssl): its rows and the ratios are skipped");
await benchNodecert();
rmSync(tmp, { recursive: true, force: true });

const f = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : "-");
console.log(`bench-issue ${new Date().toISOString()}  load average ${os.loadavg().map((x) => x.toFixed(2)).join(" ")}  ${os.cpus().length} × ${os.cpus()[0].model}  node ${process.version}`);
console.log(`command: ${commandLine()}`);
console.log("server    request              conc  n     certs/s  p50 ms  p99 ms  CPU ms/cert  RSS idle→peak MiB  errors");
for (const r of results) {
  const l = r.level;
  console.log(
    `${r.server.padEnd(9)} ${r.what.padEnd(20)} ${String(l.conc).padEnd(5)} ${String(l.n).padEnd(5)} ${f(l.certsPerSec).padStart(7)}  ${f(l.p50, 1).padStart(6)}  ${f(l.p99, 1).padStart(6)}  ${f(l.cpuMsPerCert, 2).padStart(11)}  ${`${f(l.rssIdleMiB)}→${f(l.rssPeakMiB)}`.padStart(17)}  ${l.errors}`,
  );
}
for (const conc of LEVELS) {
  const c = results.find((r) => r.server === "cfssl" && r.level.conc === conc)?.level;
  const n = results.find((r) => r.server === "nodecert" && r.what === "client" && r.level.conc === conc)?.level;
  if (c && n) {
    console.log(`ratio nodecert/cfssl conc ${conc}: certs/s ${(n.certsPerSec / c.certsPerSec).toFixed(2)}×, p99 ${(n.p99 / c.p99).toFixed(2)}×, CPU/cert ${(n.cpuMsPerCert / c.cpuMsPerCert).toFixed(2)}×`);
  }
}
