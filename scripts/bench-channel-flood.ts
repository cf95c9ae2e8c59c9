// What a hello flood from one node costs the control plane (docs/BENCHMARKS.md, issue 10 item 4):
// a real `nodecert server run` process with its default limits; one joined node opens the channel,
// stops reading and sends N hellos claiming a stale trust bundle, while another address probes
// /healthz. Prints the trust-bundle pushes the node received, the server's RSS before, right after
// and 2 s after the flood, and /healthz latency idle vs during the flood.
//
//   node --import tsx scripts/bench-channel-flood.ts [--hellos 20000] [--probes 20]
import https from "node:https";
import { parseArgs } from "node:util";
import { commandLine, readProcStatus } from "./proc-stats.js";
import { serverProcess } from "../test/support/server-process.js";
import { joinRaw, openChannel } from "../test/support/node-client.js";
import { cleanupTemps } from "../test/support/helpers.js";

const { values } = parseArgs({ options: { hellos: { type: "string", default: "20000" }, probes: { type: "string", default: "20" } } });
const HELLOS = Number(values.hellos);
const PROBES = Number(values.probes);

function healthzMs(port: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve) => {
    const req = https.get({ host: "127.0.0.1", port, path: "/healthz", localAddress: "127.0.0.2", rejectUnauthorized: false, minVersion: "TLSv1.3", agent: false, timeout: 30_000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode === 200 ? Number(process.hrtime.bigint() - t0) / 1e6 : NaN));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(NaN));
  });
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const mib = (kib: number) => (kib / 1024).toFixed(1);

console.log(`# ${commandLine()}`);
console.log(`date ${new Date().toISOString()}`);
const server = await serverProcess();
await server.start();
const view = { url: server.url, port: server.port, authority: { trustBundle: server.trustBundle() } };
const cred = (await joinRaw(view, "flood-1", await server.createToken())).credential!;
const idle: number[] = [];
for (let i = 0; i < PROBES; i++) idle.push(await healthzMs(server.port));
const rss0 = readProcStatus(server.pid()).rssKiB;
const ch = await openChannel(view, cred);
const ws = ch.ws!;
const socket = (ws as unknown as { _socket: import("node:net").Socket })._socket;
let pushes = 0;
ws.on("message", (d) => (JSON.parse(d.toString()).type === "trust-bundle" ? pushes++ : undefined));
const closed = new Promise<number>((r) => ws.once("close", (c) => r(c)));
socket.pause();
const hello = (i: number) => JSON.stringify({ v: 1, id: `h${i}`, type: "hello", agentVersion: "flood", certificates: [], crypto: { provider: "x", fips: false }, addresses: ["127.0.0.1"], trustBundleSha256: "0".repeat(64) });
const t0 = Date.now();
for (let i = 0; i < HELLOS; i++) ws.send(hello(i));
const during: number[] = [];
for (let i = 0; i < PROBES; i++) during.push(await healthzMs(server.port));
const rss1 = readProcStatus(server.pid()).rssKiB;
socket.resume();
const code = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), 60_000))]);
await new Promise((r) => setTimeout(r, 2000));
const rss2 = readProcStatus(server.pid()).rssKiB;
console.log(`hellos sent ${HELLOS} in ${Date.now() - t0} ms; channel closed with ${code}; trust-bundle pushes received ${pushes}`);
console.log(`server RSS before / right after / 2 s after: ${mib(rss0)} / ${mib(rss1)} / ${mib(rss2)} MiB (+${mib(rss1 - rss0)} MiB)`);
console.log(`/healthz from 127.0.0.2, ${PROBES} probes each: idle p50 ${pct(idle, 50).toFixed(1)} ms max ${Math.max(...idle).toFixed(1)} ms; during the flood p50 ${pct(during, 50).toFixed(1)} ms max ${Math.max(...during).toFixed(1)} ms; failed ${during.filter((x) => Number.isNaN(x)).length}`);
ws.terminate();
await server.stop();
cleanupTemps();
process.exit(0);
