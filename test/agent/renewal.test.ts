import { strict as assert } from "node:assert";
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync, symlinkSync, rmSync } from "node:fs";
import path from "node:path";
import http from "node:http";
import { runAgent, type RunningAgent } from "../../src/agent/daemon.js";
import { AgentConfig } from "../../src/config/agent.js";
import type { Scheduler } from "../../src/agent/scheduler.js";
import type { Identity } from "../../src/agent/identity.js";
import { nodeIdentity } from "../../src/agent/identity.js";
import { nodeLayout } from "../../src/agent/layout.js";
import { readState } from "../../src/agent/state.js";
import { certificateInfo } from "../../src/pki/certificate-info.js";
import { BACKDATE_MS } from "../../src/pki/certificate.js";
import { privateKeyBlock } from "../../src/pki/pem.js";
import { chainProblems, keyMatchesCertificate } from "../../src/pki/verify.js";
import { requestJson } from "../../src/platform/https-client.js";
import { createNodeCsr } from "../../src/pki/csr.js";
import { generateKeyPair } from "../../src/pki/keys.js";
import { PROTOCOL_VERSION } from "../../src/protocol/messages.js";
import { writeFileAtomic } from "../../src/platform/files.js";
import type { Exec } from "../../src/agent/hooks.js";
import { captureLogger, FakeClock, freePort, nodecert, opensslServer, requireTool, run, startServer, tempDir, type TestServer } from "../support/helpers.js";

interface Harness {
  agent: RunningAgent;
  timers: { fn: () => void; ms: number }[];
  jobs: { expr: string; job: () => Promise<unknown>; stopped: boolean }[];
  lines: string[];
  root: string;
  tokenFile: string;
  setAddresses(a: string[]): void;
}

async function startAgent(server: TestServer, clock: FakeClock, over: Record<string, unknown> = {}, o: { random?: () => number; exec?: Exec } = {}): Promise<Harness> {
  const root = path.join(tempDir(), "node");
  const tokenFile = path.join(tempDir(), "token");
  await writeFileAtomic(tokenFile, (await server.createToken()) + "\n");
  let addresses = ["127.0.0.1"];
  const timers: Harness["timers"] = [];
  const jobs: Harness["jobs"] = [];
  const scheduler: Scheduler = (expr, job) => {
    const j = { expr, job, stopped: false };
    jobs.push(j);
    return { stop: () => void (j.stopped = true), execute: job };
  };
  const config = AgentConfig.parse({ root, server: server.url, caCertHash: server.pin, tokenFile, nodeName: "n1", addresses: { only: addresses }, healthListen: "127.0.0.1:0", hooks: [], ...over });
  const { logger, lines } = captureLogger("agent");
  const identity = (): Promise<Identity> => nodeIdentity({ nodeName: "n1", addresses: { includeLoopback: true, includeLinkLocal: false, extra: [], only: addresses }, facts: async () => ({}) });
  const agent = await runAgent({
    config,
    logger,
    clock: clock.now,
    random: o.random,
    identity,
    exec: o.exec,
    scheduler,
    setTimer: (fn, ms) => {
      const t = { fn, ms };
      timers.push(t);
      return { cancel: () => void timers.splice(timers.indexOf(t) >>> 0, timers.includes(t) ? 1 : 0) };
    },
  });
  await agent.joined;
  return { agent, timers, jobs, lines, root, tokenFile, setAddresses: (a) => (addresses = a) };
}

const current = (root: string, kind: "client" | "serving") => readFileSync(nodeLayout(root).current(kind), "utf8");
const serialOf = (root: string, kind: "client" | "serving") => certificateInfo(current(root, kind)).serial;
const colonSerial = (hex: string) => (hex.length % 2 ? "0" + hex : hex).match(/../g)!.join(":");

function getText(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) =>
    http.get(url, (res) => {
      let d = "";
      res.on("data", (c) => (d += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: d }));
    }).on("error", reject),
  );
}

describe("agent renewal against a real server", function () {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
  });

  it("renews both short-lived certificates on schedule with a fake clock; kubelet.conf keeps working (kubectl mTLS) after every rotation", async function () {
    requireTool(this, "openssl");
    requireTool(this, "kubectl");
    // Certificates live 2 minutes and are backdated 5: the fake clock stays inside the window in
    // which they are also valid in real time, so Go's TLS (real clock) can check every rotation.
    const clock = new FakeClock(Date.now() - 110_000);
    const server = await startServer({ clock, overrides: { certificates: { maxClientLifetime: "2m", maxServingLifetime: "2m" } } });
    closers.push(() => server.close());
    const h = await startAgent(server, clock);
    closers.push(() => h.agent.close());
    assert.equal(h.jobs.length, 1);
    assert.equal(h.jobs[0].expr, "* * * * *", "default schedule: every minute");
    const layout = nodeLayout(h.root);
    const rotations = { client: 0, serving: 0 };
    const seen = { client: new Set([serialOf(h.root, "client")]), serving: new Set([serialOf(h.root, "serving")]) };
    const deadlineLimit = Date.now() + 280_000;
    while (rotations.client < 2 || rotations.serving < 2) {
      const next = Math.min(...h.agent.renewer.lastDecisions.map((x) => x.renewAt!.getTime()));
      assert.ok(next + 1000 < deadlineLimit, "test window exhausted before two rotations each");
      // One minute-tick past the earliest deadline (which the 5-minute backdate can put before
      // now for such short certificates: then the tick is simply now).
      clock.t = Math.max(clock.t + 1000, next + 1000);
      const out = (await h.jobs[0].job()) as { renewed: { kind: "client" | "serving"; serial: string }[] };
      if (!out.renewed.length) {
        const audit = (await server.store.listAudit()).reverse().map((e) => `${e.type} ${JSON.stringify(e.detail)}`);
        assert.fail(`a tick at the deadline renews: ${JSON.stringify(out)}\naudit:\n${audit.join("\n")}\nagent:\n${h.lines.filter((l) => /renew|install|channel|rotat/.test(l)).join("\n")}`);
      }
      for (const r of out.renewed) {
        assert.ok(!seen[r.kind].has(r.serial));
        seen[r.kind].add(r.serial);
        rotations[r.kind]++;
        assert.equal(serialOf(h.root, r.kind), r.serial);
      }
      const cert = certificateInfo(current(h.root, "client"));
      assert.ok(cert.notAfter.getTime() - cert.notBefore.getTime() <= 7 * 60_000, "short-lived (2 min + 5 min backdate)");
      const srv = await opensslServer(["-cert", layout.current("serving"), "-key", layout.current("serving"), "-CAfile", layout.caFile, "-Verify", "1", "-verify_return_error", "-www", "-tls1_3"]);
      try {
        const k = await run("kubectl", ["--kubeconfig", layout.kubeconfig, "--server", `https://127.0.0.1:${srv.port}`, "--tls-server-name", "n1", "get", "--raw", "/"]);
        assert.equal(k.code, 0, k.stderr);
        assert.ok(k.stdout.includes(colonSerial(serialOf(h.root, "client"))), "the server saw the newest client certificate");
      } finally {
        srv.stop();
      }
    }
    const files = readdirSync(layout.pkiDir).filter((n) => /^kubelet-(client|server)-\d/.test(n));
    assert.ok(files.length <= 6, `pruned to 3 per kind: ${files}`);
    const audit = await server.store.listAudit();
    assert.ok(audit.filter((e) => e.type === "renew.issued").length >= 2);
  });

  it("persists the drawn deadline across restarts, and renewBefore overrides it", async () => {
    const clock = new FakeClock(Date.now());
    const server = await startServer({ clock });
    closers.push(() => server.close());
    const h = await startAgent(server, clock, {}, { random: () => 0.25 });
    const first = h.agent.renewer.lastDecisions.map((x) => x.renewAt!.toISOString());
    const state = await readState(nodeLayout(h.root));
    assert.equal(state!.certificates.client!.renewAt, first[0]);
    const info = certificateInfo(current(h.root, "client"));
    // Of the usable lifetime (issue 18 item 5): from issuance, i.e. after the signer's backdate.
    const usableFrom = info.notBefore.getTime() + BACKDATE_MS;
    const frac = (Date.parse(first[0]) - usableFrom) / (info.notAfter.getTime() - usableFrom);
    assert.ok(Math.abs(frac - 0.75) < 1e-6, `0.7 + 0.2 * 0.25 = 0.75, got ${frac}`);
    await h.agent.close();
    // A restart with a different random source keeps the persisted deadline.
    const config = AgentConfig.parse({ root: h.root, server: server.url, caCertHash: server.pin, nodeName: "n1", addresses: { only: ["127.0.0.1"] }, healthListen: "127.0.0.1:0", hooks: [] });
    const again = await runAgent({ config, logger: captureLogger().logger, clock: clock.now, random: () => 0.99, scheduler: () => ({ stop() {}, execute: async () => undefined }), setTimer: () => ({ cancel() {} }) });
    closers.push(() => again.close());
    await again.tick();
    assert.deepEqual(again.renewer.lastDecisions.map((x) => x.renewAt!.toISOString()), first);
    again.reload({ ...config, renewBefore: 30 * 86_400_000 });
    await again.tick();
    assert.equal(again.renewer.lastDecisions[0].renewAt!.getTime(), info.notAfter.getTime() - 30 * 86_400_000);
  });

  it("while the server is down: old certificates stay, backoff grows with full jitter up to the cap, renewal completes when it returns", async () => {
    const clock = new FakeClock(Date.now());
    const port = await freePort();
    const dir = path.join(tempDir(), "server");
    let server = await startServer({ clock, dir, listen: `127.0.0.1:${port}` });
    const h = await startAgent(server, clock, { backoff: { initial: "2s", max: "30s" } }, { random: () => 0.999 });
    closers.push(() => h.agent.close());
    const before = { client: current(h.root, "client"), serving: current(h.root, "serving") };
    await server.close();
    const first = await h.agent.renewer.renew(["client", "serving"], { force: true });
    assert.match(first.error ?? "", /cannot reach https:\/\/127.0.0.1:\d+: ECONNREFUSED/);
    const delays: number[] = [];
    for (let i = 0; i < 7; i++) {
      assert.equal(h.timers.length, 1, "exactly one retry pending");
      const t = h.timers.shift()!;
      delays.push(t.ms);
      clock.advance(t.ms);
      // Force the renewal to be due so the retry really attempts it.
      h.agent.reload({ ...h.agent.renewer.config, renewBefore: 10 * 365 * 86_400_000 });
      t.fn();
      await new Promise((r) => setTimeout(r, 5));
      while (!h.timers.length) await new Promise((r) => setTimeout(r, 5));
    }
    delays.push(h.timers[0].ms);
    // random = 0.999: delay = 0.999 * min(30 s, 2 s * 2^n)
    assert.deepEqual(delays, [1998, 3996, 7992, 15984, 29970, 29970, 29970, 29970]);
    assert.equal(current(h.root, "client"), before.client, "old client pair untouched");
    assert.equal(current(h.root, "serving"), before.serving, "old serving pair untouched");
    const health = `http://127.0.0.1:${h.agent.healthPort}`;
    const metrics = (await getText(`${health}/metrics`)).body;
    assert.match(metrics, /nodecert_renewal_errors_total 8/, "the first attempt and seven retries");
    assert.match(metrics, /nodecert_renewals_total\{kind="client",result="failure"\} 8/);
    // Still ready: the certificate is far from expiry. Inside the danger window it is not.
    assert.equal((await getText(`${health}/readyz`)).status, 200);
    h.agent.reload({ ...h.agent.renewer.config, dangerWindow: 400 * 86_400_000 });
    const notReady = await getText(`${health}/readyz`);
    assert.equal(notReady.status, 503);
    assert.match(notReady.body, /renewals are failing: .*ECONNREFUSED/);
    const status = await run(path.resolve("bin/nodecert"), ["status", "--root", h.root]);
    assert.match(status.stdout, /LAST ERROR: .*ECONNREFUSED/);
    server = await startServer({ clock, dir, listen: `127.0.0.1:${port}` });
    closers.push(() => server.close());
    const t = h.timers.shift()!;
    t.fn();
    while (h.agent.renewer.consecutiveFailures !== 0) await new Promise((r) => setTimeout(r, 10));
    assert.notEqual(current(h.root, "client"), before.client);
    assert.equal(h.timers.length, 0, "no retry pending after success");
    assert.equal((await getText(`${health}/readyz`)).status, 200);
  });

  it("lineage: an older certificate of the same node is refused with a reason; the hand-over (lost response) succeeds", async () => {
    const clock = new FakeClock(Date.now());
    const server = await startServer({ clock });
    closers.push(() => server.close());
    const h = await startAgent(server, clock);
    closers.push(() => h.agent.close());
    const held: string[] = [current(h.root, "client")]; // c0, from the join
    for (let i = 1; i <= 3; i++) {
      await h.agent.renewer.renew(["client"], { force: true }); // c_i, authenticated with c_(i-1)
      held.push(current(h.root, "client"));
    }
    // Now the newest is c3 and the last certificate the node authenticated with is c2.
    const renewWith = async (pem: string) => {
      const keys = await generateKeyPair("ECDSA-P256");
      return requestJson(`${server.url}/v1/renew`, {
        body: { v: PROTOCOL_VERSION, facts: { hostname: "n1", addresses: ["127.0.0.1"], agentVersion: "t" }, csrs: { client: await createNodeCsr({ kind: "client", nodeName: "n1", keys }) } },
        tls: { ca: server.ca.bundlePem, cert: pem, key: pem },
      });
    };
    for (const older of [held[0], held[1]]) {
      const old = await renewWith(older);
      assert.equal(old.status, 403);
      assert.equal((old.body as { rule: string }).rule, "lineage");
      assert.match((old.body as { reason: string }).reason, /neither the newest issued to node "n1" .* nor the last one it used .* an older or copied certificate cannot renew/);
    }
    // Hand-over: the server issues c4, then c5, but both responses are lost; the node still holds c3.
    assert.equal((await renewWith(held[3])).status, 200);
    assert.equal((await renewWith(held[3])).status, 200);
    const out = await h.agent.renewer.renew(["client"], { force: true });
    assert.equal(out.error, undefined);
    assert.equal(out.renewed.length, 1);
    const audit = await server.store.listAudit();
    assert.ok(audit.some((e) => e.type === "renew.denied" && e.rule === "lineage"));
  });

  it("an address change re-issues the serving certificate with the new SAN within one tick, once the control plane allows the address", async () => {
    const clock = new FakeClock(Date.now());
    const server = await startServer({ clock });
    closers.push(() => server.close());
    const h = await startAgent(server, clock);
    closers.push(() => h.agent.close());
    const clientBefore = serialOf(h.root, "client");
    const servingBefore = serialOf(h.root, "serving");
    h.setAddresses(["127.0.0.1", "127.0.0.2"]);
    // The node's word is not enough: refused, and the installed certificate stays.
    const refused = (await h.jobs[0].job()) as { renewed: unknown[]; error?: string };
    assert.deepEqual(refused.renewed, []);
    assert.match(refused.error ?? "", /HTTP 403 denied \(rule serving-sans-owned\): IP SAN 127\.0\.0\.2 is not one this control plane allows node "n1"/);
    assert.equal(serialOf(h.root, "serving"), servingBefore);
    // Once an operator approves it, the next tick (after the backoff) gets it.
    const approved = await nodecert(["node", "approve-san", "n1", "127.0.0.2", "--dir", server.dir, "--server", server.url]);
    assert.equal(approved.code, 0, approved.stderr);
    clock.advance(h.agent.renewer.nextAttemptAt!.getTime() - clock.t + 1);
    const out = (await h.jobs[0].job()) as { renewed: { kind: string }[] };
    assert.deepEqual(out.renewed.map((r) => r.kind), ["serving"]);
    assert.deepEqual(certificateInfo(current(h.root, "serving")).sans.ip, ["127.0.0.1", "127.0.0.2"]);
    assert.equal(serialOf(h.root, "client"), clientBefore, "the client certificate did not need renewal");
  });

  it("expired client certificate: refused by default; accepted within renewAfterExpiry; otherwise a token file re-joins", async () => {
    const clock = new FakeClock(Date.now() - 110_000);
    const lifetimes = { certificates: { maxClientLifetime: "2m", maxServingLifetime: "2m" } };
    // Both servers start before the clock jumps: their own TLS certificates must stay valid in real time.
    const server = await startServer({ clock, overrides: lifetimes });
    closers.push(() => server.close());
    const graceful = await startServer({ clock, overrides: { ...lifetimes, renewAfterExpiry: "1h" } });
    closers.push(() => graceful.close());
    const h = await startAgent(server, clock);
    closers.push(() => h.agent.close());
    const g = await startAgent(graceful, clock);
    closers.push(() => g.agent.close());
    rmSync(h.tokenFile);
    rmSync(g.tokenFile);
    clock.advance(10 * 60_000); // the node was off: both certificates expired

    const refused = await h.agent.renewer.renew(["client", "serving"], { force: true });
    assert.match(refused.error ?? "", /HTTP 401 certificate-expired \(rule expired\): client certificate expired at .*renewAfterExpiry is off/);
    await h.agent.tick();
    const ready = await h.agent.readiness();
    assert.equal(ready.ready, false);
    assert.match(ready.reason, /expired/);
    // An unbound token cannot re-join an existing node; one bound to it can.
    await writeFileAtomic(h.tokenFile, (await server.createToken()) + "\n");
    const unbound = await h.agent.renewer.renew(["client", "serving"], { force: true });
    assert.match(unbound.error ?? "", /rule existing-node.*nodecert token create --node n1/);
    await writeFileAtomic(h.tokenFile, (await server.createToken({ node: "n1" })) + "\n");
    const rejoined = await h.agent.renewer.renew(["client", "serving"], { force: true });
    assert.equal(rejoined.error, undefined);
    assert.equal(rejoined.renewed.length, 2);
    await h.agent.tick();
    assert.equal((await h.agent.readiness()).ready, true);

    // A spent token left in the token file does not stop the renewAfterExpiry path.
    await writeFileAtomic(g.tokenFile, "abcdef.0123456789abcdef\n");
    const accepted = await g.agent.renewer.renew(["client", "serving"], { force: true });
    assert.equal(accepted.error, undefined, "renewed with the expired certificate (the TLS handshake proved possession of its key)");
    assert.ok(g.lines.some((l) => l.includes("re-join with the token file failed; renewed with the expired certificate instead")));
    clock.advance(2 * 3600_000);
    const tooLate = await g.agent.renewer.renew(["client", "serving"], { force: true });
    assert.match(tooLate.error ?? "", /this server accepts expired certificates for only 1h/);
  });

  it("hooks run after install with NODECERT_RENEWED; a failing or hanging hook is counted and never rolls back", async () => {
    const clock = new FakeClock(Date.now());
    const server = await startServer({ clock });
    closers.push(() => server.close());
    const out = path.join(tempDir(), "hook.out");
    const hooks = [
      { type: "exec", argv: ["sh", "-c", `echo "$NODECERT_RENEWED" >> ${out}`] },
      { type: "exec", argv: ["sh", "-c", "exit 3"], on: ["serving"] },
      { type: "exec", argv: ["sleep", "5"], timeout: "200ms" },
      { type: "systemd", unit: "kubelet" },
    ];
    const calls: string[][] = [];
    const { execCommand } = await import("../../src/agent/hooks.js");
    // systemctl is replaced (no systemd in a test sandbox); everything else runs for real.
    const exec: Exec = async (file, args, timeout, env) => {
      calls.push([file, ...args]);
      if (file === "systemctl") return { code: 1, output: "No files found for kubelet.service." };
      return execCommand(file, args, timeout, env);
    };
    const h = await startAgent(server, clock, { hooks }, { exec });
    closers.push(() => h.agent.close());
    assert.equal(readFileSync(out, "utf8").trim(), "client,serving", "the join ran the hooks too");
    const before = serialOf(h.root, "serving");
    const res = await h.agent.renewer.renew(["serving"], { force: true });
    assert.equal(res.error, undefined);
    assert.notEqual(serialOf(h.root, "serving"), before, "new certificate kept despite hook failures");
    assert.deepEqual(readFileSync(out, "utf8").trim().split("\n"), ["client,serving", "serving"]);
    assert.deepEqual(calls.filter((c) => c[0] === "systemctl").at(-1), ["systemctl", "cat", "--", "kubelet.service"], "probed, then skipped");
    const metrics = (await getText(`http://127.0.0.1:${h.agent.healthPort}/metrics`)).body;
    assert.match(metrics, /nodecert_hook_failures_total\{hook="exec:sh"\} 2/);
    assert.match(metrics, /nodecert_hook_failures_total\{hook="exec:sleep"\} 2/);
    assert.ok(h.lines.some((l) => /reload hook failed/.test(l) && /timed out after 200 ms/.test(l)));
    // A signal hook: the pid in the file gets the signal.
    const { spawn } = await import("node:child_process");
    const child = spawn("sh", ["-c", "trap 'echo got-hup; exit 0' HUP; while :; do sleep 0.05; done"], { stdio: ["ignore", "pipe", "ignore"] });
    let got = "";
    child.stdout.on("data", (d) => (got += d));
    const pidFile = path.join(tempDir(), "kubelet.pid");
    writeFileSync(pidFile, String(child.pid));
    h.agent.reload({ ...h.agent.renewer.config, hooks: [{ type: "signal", pidFile, signal: "SIGHUP", on: ["client", "serving"], timeout: 1000 }] });
    await h.agent.renewer.renew(["client"], { force: true });
    await new Promise<void>((r) => child.on("exit", () => r()));
    assert.match(got, /got-hup/);
  });

  it("/metrics exposes expiry, TTL, next renewal and renewal counts", async () => {
    const clock = new FakeClock(Date.now());
    const server = await startServer({ clock });
    closers.push(() => server.close());
    const h = await startAgent(server, clock);
    closers.push(() => h.agent.close());
    await h.agent.renewer.renew(["client", "serving"], { force: true });
    const m = (await getText(`http://127.0.0.1:${h.agent.healthPort}/metrics`)).body;
    const notAfter = certificateInfo(current(h.root, "client")).notAfter.getTime() / 1000;
    assert.match(m, new RegExp(`nodecert_certificate_expiry_timestamp_seconds\\{kind="client"\\} ${notAfter}`));
    const ttl = Number(/nodecert_certificate_ttl_seconds\{kind="client"\} (\d+)/.exec(m)![1]);
    assert.ok(Math.abs(ttl - (notAfter - clock.t / 1000)) <= 1);
    assert.match(m, /nodecert_next_renewal_timestamp_seconds\{kind="serving"\} \d+/);
    assert.match(m, /nodecert_renewals_total\{kind="client",result="success"\} 2/, "join + renewal");
    assert.match(m, /nodecert_last_renewal_success_timestamp_seconds\{kind="client"\}/);
    assert.match(m, /nodecert_ready 1/);
  });

  it("startup recovery removes temp files and repairs a missing current symlink from the newest valid file", async () => {
    const clock = new FakeClock(Date.now());
    const server = await startServer({ clock });
    closers.push(() => server.close());
    const h = await startAgent(server, clock);
    await h.agent.renewer.renew(["client"], { force: true });
    await h.agent.close();
    const layout = nodeLayout(h.root);
    const target = readFileSync(layout.current("client"), "utf8");
    rmSync(layout.current("client"));
    writeFileSync(path.join(layout.pkiDir, ".nodecert-tmp-kubelet-client-current.pem.abc"), "half");
    mkdirSync(layout.stateDir, { recursive: true });
    // A broken serving link (points at nothing) is repaired too.
    const servingTarget = readFileSync(layout.current("serving"), "utf8");
    rmSync(layout.current("serving"));
    symlinkSync("kubelet-server-1999-01-01-00-00-00.pem", layout.current("serving"));
    const config = AgentConfig.parse({ root: h.root, server: server.url, caCertHash: server.pin, nodeName: "n1", addresses: { only: ["127.0.0.1"] }, healthListen: "127.0.0.1:0", hooks: [] });
    const { logger, lines } = captureLogger();
    const again = await runAgent({ config, logger, clock: clock.now, scheduler: () => ({ stop() {}, execute: async () => undefined }), setTimer: () => ({ cancel() {} }) });
    closers.push(() => again.close());
    assert.equal(readFileSync(layout.current("client"), "utf8"), target);
    assert.equal(readFileSync(layout.current("serving"), "utf8"), servingTarget);
    assert.ok(!readdirSync(layout.pkiDir).some((n) => n.includes("nodecert-tmp")));
    assert.ok(lines.some((l) => /startup recovery/.test(l) && /pointed kubelet-client-current.pem/.test(l)));
    for (const kind of ["client", "serving"] as const) {
      const pem = current(h.root, kind);
      assert.ok(keyMatchesCertificate(pem, privateKeyBlock(pem)!));
      assert.deepEqual(chainProblems(pem, server.ca.bundlePem, clock.now()), []);
    }
  });

  it("close() during an in-flight renewal waits for the install to finish (SIGTERM semantics)", async () => {
    const clock = new FakeClock(Date.now());
    const server = await startServer({ clock });
    closers.push(() => server.close());
    const h = await startAgent(server, clock);
    const before = serialOf(h.root, "client");
    const pending = h.agent.renewer.renew(["client", "serving"], { force: true });
    await h.agent.close();
    const out = await pending;
    assert.equal(out.error, undefined);
    const state = await readState(nodeLayout(h.root));
    assert.notEqual(state!.certificates.client!.serial, before);
    assert.equal(state!.certificates.client!.serial, serialOf(h.root, "client"));
    assert.ok(!existsSync(path.join(nodeLayout(h.root).stateDir, "pending-install.json")));
  });
});
