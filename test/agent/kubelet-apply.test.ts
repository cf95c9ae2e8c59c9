// Verified apply against real TLS endpoints standing in for the kubelet: one that reloads its
// serving pair from the installed file (as a kubelet >= 1.31 does) and `openssl s_server`, which
// reads it once and never again, so only the restart hook makes it serve the new certificate.
// `openssl s_client` (a peer that is not nodecert) reads the served serial; the wait runs on the
// fake clock.
import { strict as assert } from "node:assert";
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, watch, type FSWatcher } from "node:fs";
import tls from "node:tls";
import path from "node:path";
import { runAgent, type RunningAgent } from "../../src/agent/daemon.js";
import { AgentConfig } from "../../src/config/agent.js";
import { nodeIdentity, type Identity } from "../../src/agent/identity.js";
import type { Scheduler } from "../../src/agent/scheduler.js";
import type { Exec } from "../../src/agent/hooks.js";
import { layoutFor } from "../../src/agent/layout.js";
import { certificateInfo } from "../../src/pki/certificate-info.js";
import { writeFileAtomic } from "../../src/platform/files.js";
import { FakeClock, captureLogger, freePort, nodecert, requireTool, run, startServer, tempDir, type TestServer } from "../support/helpers.js";
import { until } from "../support/fleet.js";
import { checkMetrics, sample } from "../support/promtool.js";
import { KUBELET_COUNTERS_WITHOUT_TOTAL } from "../../src/agent/metrics-kubelet.js";

/** The serial `openssl s_client` reads from the endpoint. */
async function servedSerial(port: number): Promise<string> {
  const c = await run("sh", ["-c", `openssl s_client -connect 127.0.0.1:${port} </dev/null 2>/dev/null | openssl x509 -noout -serial`]);
  assert.equal(c.code, 0, c.stderr);
  return c.stdout.trim().replace(/^serial=/, "").toLowerCase().replace(/^0+/, "");
}

/** A TLS endpoint that reloads the pair when the file behind kubelet-server-current.pem changes. */
function reloadingEndpoint(current: string, port: number): Promise<{ reloads: () => number; close(): void }> {
  const pair = () => {
    const pem = readFileSync(current, "utf8");
    return { cert: pem, key: pem };
  };
  const server = tls.createServer({ ...pair(), minVersion: "TLSv1.3" }, (s) => s.end());
  let reloads = 0;
  const watcher: FSWatcher = watch(path.dirname(current), () => {
    try {
      server.setSecureContext(pair());
      reloads++;
    } catch {
      // a half-swapped directory: the next event reloads
    }
  });
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve({ reloads: () => reloads, close: () => (watcher.close(), server.close()) })));
}

/** openssl s_server: reads the pair at start only. */
async function staticEndpoint(current: string, port: number): Promise<{ restart(): Promise<void>; stop(): void }> {
  let child: ChildProcess | undefined;
  const start = () =>
    new Promise<void>((resolve, reject) => {
      const c = spawn("openssl", ["s_server", "-accept", `127.0.0.1:${port}`, "-cert", current, "-key", current, "-tls1_3", "-naccept", "1000"], { stdio: ["pipe", "pipe", "pipe"] });
      child = c;
      let out = "";
      c.stdout!.on("data", (d) => {
        out += d;
        if (out.includes("ACCEPT")) resolve();
      });
      c.stderr!.on("data", (d) => (out += d));
      c.on("exit", (code) => reject(new Error(`s_server exited ${code}: ${out}`)));
    });
  const stop = async () => {
    const c = child;
    if (!c || c.exitCode !== null) return;
    const gone = new Promise((r) => c.once("exit", r));
    c.kill("SIGKILL");
    await gone;
  };
  await start();
  return { restart: async () => (await stop(), await start()), stop: () => void stop() };
}

describe("verified apply: the agent proves the kubelet serves the certificate it installed", function () {
  this.timeout(120_000);
  let server: TestServer;
  const closers: (() => unknown)[] = [];
  before(async function () {
    requireTool(this, "openssl");
    server = await startServer();
  });
  after(async () => server?.close());
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c();
  });

  let nodes = 0;
  async function startAgent(port: number, exec: Exec, kubelet: Record<string, unknown> = {}) {
    const name = `va-${++nodes}`; // each test joins a node of its own
    const clock = new FakeClock(Date.now());
    const root = path.join(tempDir(), "node");
    const tokenFile = path.join(tempDir(), "token");
    await writeFileAtomic(tokenFile, (await server.createToken()) + "\n");
    const timers: { fn: () => void; ms: number }[] = [];
    const scheduler: Scheduler = (_e, job) => ({ stop: () => undefined, execute: job });
    const config = AgentConfig.parse({ root, server: server.url, caCertHash: server.pin, tokenFile, nodeName: name, addresses: { only: ["127.0.0.1"] }, healthListen: "127.0.0.1:0", hooks: [], channel: { enabled: false }, kubelet: { servingAddress: `127.0.0.1:${port}`, wait: "60s", pollInterval: "5s", ...kubelet } });
    const { logger, lines } = captureLogger("agent");
    const identity = (): Promise<Identity> => nodeIdentity({ nodeName: name, addresses: { includeLoopback: true, includeLinkLocal: false, extra: [], only: ["127.0.0.1"] }, facts: async () => ({}) });
    const agent: RunningAgent = await runAgent({
      config,
      logger,
      clock: clock.now,
      identity,
      exec,
      scheduler,
      setTimer: (fn, ms) => {
        const t = { fn, ms };
        timers.push(t);
        return { cancel: () => void (timers.includes(t) && timers.splice(timers.indexOf(t), 1)) };
      },
    });
    closers.push(() => agent.close());
    await agent.joined;
    const layout = layoutFor(config);
    /** Lets verified apply run: each time it waits on a timer, the fake clock moves by that much and the timer fires. */
    const drive = async () => {
      let done = false;
      const result = agent.kubeletApply.idle().then((r) => ((done = true), r));
      while (!done) {
        const t = await until("verified apply to wait or finish", () => (done ? "done" : timers.find((x) => x.ms === 5000)));
        if (t === "done") break;
        timers.splice(timers.indexOf(t), 1);
        clock.advance(t.ms);
        t.fn();
      }
      return result;
    };
    const serial = () => certificateInfo(readFileSync(layout.current("serving"), "utf8")).serial;
    return { agent, clock, layout, lines, drive, serial, root };
  }

  it("a kubelet that reloads the file is verified without a restart; metric, log and the status column say so", async () => {
    const port = await freePort();
    const execs: string[] = [];
    const exec: Exec = async (file, args) => (execs.push([file, ...args].join(" ")), { code: 0, output: "" });
    const a = await startAgent(port, exec);
    const endpoint = await reloadingEndpoint(a.layout.current("serving"), port);
    closers.push(() => endpoint?.close());
    await a.drive(); // the join's install: already served
    const before = a.serial();
    assert.equal(await servedSerial(port), before);

    const r = await a.agent.renewer.renew(["serving"], { force: true });
    assert.equal(r.error, undefined);
    const after = a.serial();
    assert.notEqual(after, before);
    const results = await a.drive();
    const serving = results.find((x) => x.kind === "serving")!;
    assert.equal(serving.outcome, "verified", serving.detail);
    assert.equal(serving.restarted, false);
    assert.equal(serving.served, after);
    assert.deepEqual(execs, [], "no restart");
    assert.ok(endpoint.reloads() > 0);
    assert.equal(await servedSerial(port), after, "openssl s_client reads the new serial too");

    const m = await (await fetch(`http://127.0.0.1:${a.agent.healthPort}/metrics`)).text();
    assert.equal(sample(m, 'nodecert_kubelet_apply_outcome{kind="serving",outcome="verified"}'), 1);
    assert.equal(sample(m, 'nodecert_kubelet_apply_outcome{kind="serving",outcome="stale"}'), 0);
    assert.equal(sample(m, 'nodecert_kubelet_restarts_total{kind="serving"}'), undefined);
    const st = await nodecert(["status", "--root", a.root, "-o", "json"]);
    const rows = JSON.parse(st.stdout).certificates as { certificate: string; kubelet?: string }[];
    assert.equal(rows.find((x) => x.certificate === "kubelet-server")!.kubelet, "verified");
    const table = await nodecert(["status", "--root", a.root]);
    assert.match(table.stdout, /KUBELET/);
    assert.match(table.stdout, /^kubelet-server .* verified +valid$/m);

    // The client certificate: installed, but only the API server can see it in use.
    await a.agent.renewer.renew(["client"], { force: true });
    const client = (await a.drive()).find((x) => x.kind === "client")!;
    assert.equal(client.outcome, "not-observable");
    const st2 = JSON.parse((await nodecert(["status", "--root", a.root, "-o", "json"])).stdout).certificates as { certificate: string; kubelet?: string }[];
    assert.equal(st2.find((x) => x.certificate === "kubelet-client")!.kubelet, "not-observable");
  });

  it("a kubelet that never reloads still serves the old serial after the wait: the restart hook runs once, then the new one is verified", async () => {
    const port = await freePort();
    let endpoint: Awaited<ReturnType<typeof staticEndpoint>> | undefined;
    const execs: string[] = [];
    // systemctl restart kubelet.service, as the default restart hook runs it, restarts the endpoint.
    const exec: Exec = async (file, args) => {
      execs.push([file, ...args].join(" "));
      if (file === "systemctl" && args[0] === "restart") await endpoint!.restart();
      return { code: 0, output: "" };
    };
    const a = await startAgent(port, exec);
    endpoint = await staticEndpoint(a.layout.current("serving"), port);
    closers.push(() => endpoint?.stop());
    await a.drive();
    const before = a.serial();
    execs.length = 0;
    const startedAt = a.clock.t;

    await a.agent.renewer.renew(["serving"], { force: true });
    const after = a.serial();
    assert.notEqual(after, before);
    assert.equal(await servedSerial(port), before, "s_server still serves the old serial");
    const serving = (await a.drive()).find((x) => x.kind === "serving")!;
    assert.equal(serving.outcome, "verified-after-restart", serving.detail);
    assert.deepEqual(execs, ["systemctl restart -- kubelet.service"], "the restart hook ran exactly once");
    assert.ok(a.clock.t - startedAt >= 60_000, "it waited the configured 60s (fake clock) before restarting");
    assert.equal(await servedSerial(port), after);
    const m = await (await fetch(`http://127.0.0.1:${a.agent.healthPort}/metrics`)).text();
    assert.equal(sample(m, 'nodecert_kubelet_apply_outcome{kind="serving",outcome="verified-after-restart"}'), 1);
    assert.equal(sample(m, 'nodecert_kubelet_restarts_total{kind="serving"}'), 1);
    if (process.env.CI === "true" || (await run("sh", ["-c", "command -v promtool"])).code === 0) {
      const check = await checkMetrics(m);
      assert.deepEqual(check.problems.filter((p) => !KUBELET_COUNTERS_WITHOUT_TOTAL.some((k) => p.startsWith(`${k} `))), [], check.output);
      assert.ok(check.code === 0 || check.code === 3, check.output);
    }
  });

  it("when the restart does not help either, the outcome is stale after a second wait, with one restart only", async () => {
    const port = await freePort();
    const execs: string[] = [];
    const exec: Exec = async (file, args) => (execs.push([file, ...args].join(" ")), { code: 0, output: "" });
    const a = await startAgent(port, exec);
    const endpoint = await staticEndpoint(a.layout.current("serving"), port);
    closers.push(() => endpoint.stop());
    await a.drive();
    const before = a.serial();
    execs.length = 0;
    const startedAt = a.clock.t;
    await a.agent.renewer.renew(["serving"], { force: true });
    const serving = (await a.drive()).find((x) => x.kind === "serving")!;
    assert.equal(serving.outcome, "stale", serving.detail);
    assert.equal(serving.served, before);
    assert.equal(execs.length, 1);
    assert.ok(a.clock.t - startedAt >= 120_000, "two waits of 60s");
    assert.match(serving.detail, new RegExp(`still serves serial ${before}, not the installed ${a.serial()}, after the restart hook`));
    const rows = JSON.parse((await nodecert(["status", "--root", a.root, "-o", "json"])).stdout).certificates as { certificate: string; kubelet?: string }[];
    assert.equal(rows.find((x) => x.certificate === "kubelet-server")!.kubelet, "stale");
    assert.ok(a.lines.some((l) => l.includes('"outcome":"stale"') && l.includes('"level":"error"')));
  });
});
