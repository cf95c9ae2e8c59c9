// Benchmark: the fleet dashboard with --nodes node records (default 10,000).
// A real control plane (`bin/nodecert server run`, its own process) whose SQLite database holds
// the node records (each with a client and a serving certificate, reported as agents report them;
// 1 % past their renewal window), the shipped `bin/nodecert dashboard` (its own process), and
// Debian's Chromium driven by puppeteer-core. It prints:
//   - fleet page interactive: navigation start → the 10,000-node table drawn and sortable
//     (performance mark "fleet-interactive"), median of --runs loads; beside it, the CA page (a
//     few hundred bytes of data) loaded the same way, as the floor of a page load in this run;
//   - sort and filter of the 10,000 rows: click → next frame, input → next frame;
//   - server CPU of one page load (index.html, app.js, app.css, /api/fleet, /api/events): the
//     dashboard process's and the control plane's CPU time (/proc/<pid>/stat) over --runs loads,
//     divided by --runs;
//   - control plane CPU of one /v1/admin/fleet read (what the dashboard's poll costs when the
//     fleet changed), beside /v1/admin/nodes (what `nodecert nodes` reads) for the same records.
// Usage: node --import tsx scripts/bench-dashboard.ts [--nodes 10000] [--runs 10] [--json] [--screenshots DIR]
//   --screenshots DIR  also saves the fleet and timeline pages of this fleet as PNGs there
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { randomBytes } from "node:crypto";
import { serverProcess } from "../test/support/server-process.js";
import { dashboardProcess, CHROMIUM } from "../test/support/dashboard.js";
import { SqliteStore } from "../src/server/store/sqlite.js";
import { serverPaths } from "../src/server/paths.js";
import { hashSecret } from "../src/server/tokens.js";
import { requestJson } from "../src/platform/https-client.js";
import { CLK_TCK, commandLine, readProcStatus } from "./proc-stats.js";

const { values: o } = parseArgs({ options: { nodes: { type: "string", default: "10000" }, runs: { type: "string", default: "10" }, json: { type: "boolean", default: false }, screenshots: { type: "string" } } });
const N = Number(o.nodes);
const RUNS = Number(o.runs);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (ticks: number) => (ticks * 1000) / CLK_TCK;
const log = (s: string) => process.stderr.write(s + "\n");

const server = await serverProcess();
{
  log(`writing ${N} node records…`);
  const store = new SqliteStore(serverPaths(server.dir).db);
  const now = Date.now();
  await store.insertToken({ id: "benchd", secretHash: hashSecret("x"), usesLeft: N + 1, expiresAt: new Date(now + 86_400_000), createdAt: new Date(now) });
  const day = 86_400_000;
  for (let i = 0; i < N; i++) {
    const name = `node-${String(i).padStart(5, "0")}`;
    // Lifetimes of 30 days, issued over the last 30 days; every 100th issued 29 days ago (past 90 %).
    const notBefore = new Date(now - (i % 100 === 0 ? 29 * day : (i % 27) * day));
    const notAfter = new Date(notBefore.getTime() + 30 * day);
    const serial = (k: string) => createSerial(i, k);
    const cert = (kind: "client" | "serving") => ({ serial: serial(kind), node: name, kind, notBefore, notAfter, fingerprint256: randomBytes(32).toString("hex"), issuedAt: notBefore });
    const facts = { hostname: name, addresses: [`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`], agentVersion: "0.1.0", os: { platform: "linux", distro: "Debian GNU/Linux", release: "12", kernel: "6.1.0-18-amd64", arch: "x64" } };
    const r = await store.commitJoin({ tokenId: "benchd", now: notBefore, node: name, facts, certificates: [cert("client"), cert("serving")], audit: { time: notBefore, type: "join.issued", node: name, source: facts.addresses[0] } });
    if (r.code !== "ok") throw new Error(`seeding ${name}: ${r.code}`);
    await store.recordReport(name, { agentVersion: "0.1.0", fips: i % 3 === 0, cryptoProvider: "default", addresses: facts.addresses, certificates: (["client", "serving"] as const).map((kind) => ({ kind, serial: serial(kind), notAfter: notAfter.toISOString(), keyAlgorithm: i % 5 === 0 ? "RSA-3072" : "ECDSA-P256", issuer: "CN=nodecert-ca" })) }, new Date(now - (i % 600) * 1000));
  }
  await store.close();
}
function createSerial(i: number, kind: string): string {
  return (kind === "client" ? "1" : "2") + i.toString(16).padStart(31, "0");
}
await server.start();
const dash = await dashboardProcess(server, ["--refresh", "60s"]);
const dashPid = dash.child.pid!;
const admin = { ca: readFileSync(serverPaths(server.dir).adminCa, "utf8"), cert: readFileSync(serverPaths(server.dir).adminCert, "utf8"), key: readFileSync(serverPaths(server.dir).adminKey, "utf8") };

const { default: puppeteer } = await import("puppeteer-core");
const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"], defaultViewport: { width: 1400, height: 900 } });
const results: Record<string, number | string> = {};
try {
  const login = await browser.newPage();
  await login.goto(dash.loginUrl);
  await login.waitForSelector(`body[data-fleet-loaded="${N}"]`, { timeout: 120_000 });
  await login.close();

  const loadOnce = async (hash: string, ready: string) => {
    const page = await browser.newPage();
    await page.goto(`${dash.origin}/${hash}`);
    await page.waitForSelector(ready, { timeout: 60_000 });
    const t = await page.evaluate(() => {
      const m = performance.getEntriesByName("fleet-interactive")[0];
      return m ? m.startTime : performance.now();
    });
    return { page, t };
  };

  // Warm-up (JIT, caches), then the measured loads, each in a fresh tab.
  (await loadOnce("#/fleet", `body[data-fleet-loaded="${N}"]`)).page.close();
  const fleetTimes: number[] = [];
  const caTimes: number[] = [];
  const d0 = readProcStatus(dashPid).cpuTicks;
  const s0 = readProcStatus(server.pid()).cpuTicks;
  for (let i = 0; i < RUNS; i++) {
    const { page, t } = await loadOnce("#/fleet", `body[data-fleet-loaded="${N}"]`);
    fleetTimes.push(t);
    if (i === RUNS - 1) {
      // Interactions on the last page: sort by client expiry, then filter.
      results.sortMs = await page.evaluate(
        () =>
          new Promise<number>((resolve) => {
            const t0 = performance.now();
            (document.querySelector('.head [data-col="client"]') as HTMLElement).click();
            requestAnimationFrame(() => resolve(performance.now() - t0));
          }),
      );
      results.filterMs = await page.evaluate(
        () =>
          new Promise<number>((resolve) => {
            const input = document.querySelector('[data-test="fleet-filter"]') as HTMLInputElement;
            const count = document.querySelector('[data-test="fleet-count"]')!;
            const t0 = performance.now();
            new MutationObserver((_m, obs) => (obs.disconnect(), requestAnimationFrame(() => resolve(performance.now() - t0 - 80)))).observe(count, { childList: true, characterData: true, subtree: true });
            input.value = "node-0999";
            input.dispatchEvent(new Event("input"));
          }),
      );
      results.filterDebounceMs = 80;
    }
    await page.close();
  }
  const d1 = readProcStatus(dashPid).cpuTicks;
  const s1 = readProcStatus(server.pid()).cpuTicks;
  for (let i = 0; i < RUNS; i++) {
    const { page, t } = await loadOnce("#/ca", "body[data-ca-loaded]");
    caTimes.push(t);
    await page.close();
  }
  if (o.screenshots) {
    const { page } = await loadOnce("#/fleet", `body[data-fleet-loaded="${N}"]`);
    await page.screenshot({ path: path.join(o.screenshots, "dashboard-fleet.png") });
    await page.goto(`${dash.origin}/#/timeline`);
    await page.waitForSelector("body[data-timeline-loaded]");
    await page.screenshot({ path: path.join(o.screenshots, "dashboard-timeline.png") });
    await page.close();
  }
  results.fleetInteractiveMs = median(fleetTimes);
  results.fleetInteractiveMaxMs = Math.max(...fleetTimes);
  results.caPageMs = median(caTimes);
  results.dashboardCpuPerLoadMs = ms(d1 - d0) / RUNS;
  results.controlPlaneCpuPerLoadMs = ms(s1 - s0) / RUNS;

  // The control plane's cost of the reads themselves (each in its own request, like a poll).
  const cpuOf = async (route: string) => {
    const c0 = readProcStatus(server.pid()).cpuTicks;
    let bytes = 0;
    for (let i = 0; i < RUNS; i++) {
      const r = await requestJson(server.url + route, { tls: { ...admin, controlPlane: true }, maxBytes: 256 << 20, timeoutMs: 60_000 });
      if (r.status !== 200) throw new Error(`${route}: ${r.status}`);
      bytes = JSON.stringify(r.body).length;
    }
    return { cpu: ms(readProcStatus(server.pid()).cpuTicks - c0) / RUNS, bytes };
  };
  const fleet = await cpuOf("/v1/admin/fleet");
  const nodes = await cpuOf("/v1/admin/nodes");
  results.fleetReadCpuMs = fleet.cpu;
  results.fleetReadBytes = fleet.bytes;
  results.nodesReadCpuMs = nodes.cpu;
  results.nodesReadBytes = nodes.bytes;
} finally {
  await browser.close();
  await dash.stop();
  await server.stop();
}
results.nodes = N;
results.runs = RUNS;
results.loadavg = os.loadavg().map((x) => x.toFixed(2)).join(" ");
results.date = new Date().toISOString();
results.command = commandLine();
if (o.json) console.log(JSON.stringify(results, null, 2));
else {
  const f = (x: number | string) => (typeof x === "number" ? x.toFixed(1) : x);
  console.log(`fleet dashboard, ${N} node records, ${RUNS} runs (${results.date}, load average ${results.loadavg})`);
  console.log(`  fleet page interactive (median / max): ${f(results.fleetInteractiveMs)} / ${f(results.fleetInteractiveMaxMs)} ms   CA page (floor): ${f(results.caPageMs)} ms   ratio ${((results.fleetInteractiveMs as number) / (results.caPageMs as number)).toFixed(2)}`);
  console.log(`  sort ${N} rows: ${f(results.sortMs)} ms to the next frame; filter: ${f(results.filterMs)} ms after the ${results.filterDebounceMs} ms debounce`);
  console.log(`  server CPU per fleet page load: dashboard ${f(results.dashboardCpuPerLoadMs)} ms + control plane ${f(results.controlPlaneCpuPerLoadMs)} ms (/proc, ${1000 / CLK_TCK} ms ticks)`);
  console.log(`  control plane CPU per read: /v1/admin/fleet ${f(results.fleetReadCpuMs)} ms (${results.fleetReadBytes} B)   /v1/admin/nodes ${f(results.nodesReadCpuMs)} ms (${results.nodesReadBytes} B)   ratio ${((results.fleetReadCpuMs as number) / (results.nodesReadCpuMs as number)).toFixed(2)}`);
}
process.exit(0);
