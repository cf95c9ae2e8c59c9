import { strict as assert } from "node:assert";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import WebSocket from "ws";
import { freePort, nodecert, opensslServer, requireTool, run, startServer, tempDir, type TestServer } from "../support/helpers.js";
import { startFleetAgent, until, type FleetAgent } from "../support/fleet.js";
import { nodeLayout } from "../../src/agent/layout.js";
import { certificateInfo } from "../../src/pki/certificate-info.js";
import { splitCertificates } from "../../src/pki/pem.js";
import { CHANNEL_PATH } from "../../src/server/fleet/hub.js";
import { CLOSE_POLICY_VIOLATION } from "../../src/protocol/channel.js";
import { loadCa } from "../../src/server/ca/ca.js";
import { nextCaPaths } from "../../src/server/fleet/ca-rotation.js";
import { sign } from "../../src/server/ca/signer.js";
import { nodeSubject } from "../../src/pki/csr.js";
import { exportPrivateKeyPem, generateKeyPair } from "../../src/pki/keys.js";
import { random } from "../support/helpers.js";
import { parseToken } from "../../src/server/tokens.js";

const current = (a: FleetAgent, kind: "client" | "serving") => readFileSync(nodeLayout(a.root).current(kind), "utf8");
const serial = (a: FleetAgent, kind: "client" | "serving") => certificateInfo(current(a, kind)).serial;

describe("e2e: the fleet channel (WebSockets)", function () {
  const closers: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
  });

  it("pushes a rotation to one node: new serials installed, ack received, kubeconfig still works", async function () {
    const server = await startServer();
    closers.push(() => server.close());
    const a = await startFleetAgent(server, "node-1");
    closers.push(() => a.agent.close());
    await until("node-1 connected", () => server.hub.connected("node-1"));
    const before = { client: serial(a, "client"), serving: serial(a, "serving") };
    const r = await nodecert(["rotate", "--node", "node-1", "--dir", server.dir, "--server", server.url, "--reason", "test push"]);
    assert.equal(r.code, 0, r.stderr);
    const id = /started campaign (\w+)/.exec(r.stdout)![1];
    const done = await until("campaign done", async () => {
      const s = await server.campaigns.status(id);
      return s?.campaign.state === "done" ? s : undefined;
    });
    assert.equal(done.counts.done, 1);
    const n = done.nodes[0];
    assert.notEqual(n.serials?.client, before.client);
    assert.equal(n.serials?.client, serial(a, "client"), "the acked serial is the installed one");
    assert.equal(n.serials?.serving, serial(a, "serving"));
    // The agent reconnected with its new client certificate.
    await until("reconnected", () => server.hub.connected("node-1") && a.lines.filter((l) => /"channel connected"/.test(l)).length >= 2);
    const rot = await nodecert(["rotations", id, "--dir", server.dir, "--server", server.url]);
    assert.match(rot.stdout, new RegExp(`CAMPAIGN ${id}\\s+done`));
    assert.match(rot.stdout, /node-1\s+done\s+1\s+client [0-9a-f]+/);
    requireTool(this, "openssl");
    requireTool(this, "kubectl");
    const l = nodeLayout(a.root);
    const srv = await opensslServer(["-cert", l.current("serving"), "-key", l.current("serving"), "-CAfile", l.caFile, "-Verify", "1", "-verify_return_error", "-www", "-tls1_3"]);
    try {
      const k = await run("kubectl", ["--kubeconfig", l.kubeconfig, "--server", `https://127.0.0.1:${srv.port}`, "get", "--raw", "/"]);
      assert.equal(k.code, 0, k.stderr);
    } finally {
      srv.stop();
    }
  });

  it("a campaign can switch nodes to another key algorithm, which the agent then keeps", async () => {
    const server = await startServer();
    closers.push(() => server.close());
    const a = await startFleetAgent(server, "alg-1");
    closers.push(() => a.agent.close());
    await until("connected", () => server.hub.connected("alg-1"));
    const r = await nodecert(["rotate", "--node", "alg-1", "--key-algorithm", "ecdsa-p384", "--dir", server.dir, "--server", server.url]);
    assert.equal(r.code, 0, r.stderr);
    const id = /started campaign (\w+)/.exec(r.stdout)![1];
    await until("done", async () => (await server.campaigns.status(id))?.campaign.state === "done");
    for (const kind of ["client", "serving"] as const) assert.equal(certificateInfo(current(a, kind)).keyAlgorithm, "ECDSA-P384");
    // The next scheduled check does not flag the pushed algorithm as a policy mismatch.
    await a.agent.tick();
    assert.deepEqual(a.agent.renewer.lastDecisions.map((x) => x.action), ["ok", "ok"]);
  });

  it("a node that never acks is retried with backoff, then marked failed with the reason", async () => {
    const server = await startServer({ campaignOptions: { commandTimeoutMs: 300, maxAttempts: 2, retryBaseMs: 100, tickMs: 50 } });
    closers.push(() => server.close());
    const a = await startFleetAgent(server, "mute-1");
    await a.agent.close();
    // Speak for the node with its certificate, and ignore every command.
    const pem = current(a, "client");
    const ws = new WebSocket(`wss://127.0.0.1:${server.port}${CHANNEL_PATH}`, { ca: server.authority.trustBundle, cert: pem, key: pem, minVersion: "TLSv1.3" });
    closers.push(async () => ws.close());
    const received: string[] = [];
    ws.on("message", (d) => received.push(JSON.parse(d.toString()).type));
    await new Promise((r) => ws.once("open", r));
    const c = await server.campaigns.start({ nodes: ["mute-1"], maxInFlight: 1, which: ["client"], reason: "mute test" });
    const s = await until("failed", async () => {
      const st = await server.campaigns.status(c.id);
      return st?.campaign.state === "done" ? st : undefined;
    }, 15_000);
    assert.equal(s.counts.failed, 1);
    assert.match(s.nodes[0].lastError ?? "", /no ack within 300ms \(after 2 attempts\)/);
    assert.deepEqual(received, ["rotate", "rotate"], "sent once, retried once");
    assert.ok(server.logLines.some((l) => /node rotation attempt failed; will retry/.test(l)));
    const out = await nodecert(["rotations", c.id, "--dir", server.dir, "--server", server.url]);
    assert.match(out.stdout, /mute-1\s+failed\s+2\s+no ack within/);
  });

  it("nodes lists every node with connection, certificates, agent version and FIPS mode", async () => {
    const server = await startServer();
    closers.push(() => server.close());
    const agents = [await startFleetAgent(server, "n-a"), await startFleetAgent(server, "n-b")];
    for (const a of agents) closers.push(() => a.agent.close());
    await until("both hello", async () => (await server.store.listNodes()).every((n) => n.reported));
    await agents[1].agent.close();
    await until("n-b offline", () => !server.hub.connected("n-b"));
    const j = JSON.parse((await nodecert(["nodes", "-o", "json", "--dir", server.dir, "--server", server.url])).stdout);
    const byName = Object.fromEntries(j.nodes.map((n: { name: string }) => [n.name, n]));
    assert.equal(byName["n-a"].connected, true);
    assert.equal(byName["n-b"].connected, false);
    assert.equal(byName["n-a"].agentVersion, "0.1.0");
    assert.equal(byName["n-a"].fips, false);
    assert.equal(byName["n-a"].certificates.find((c: { kind: string }) => c.kind === "client").serial, serial(agents[0], "client"));
    const t = await nodecert(["nodes", "--dir", server.dir, "--server", server.url]);
    assert.match(t.stdout, /^NODE\s+CONNECTED\s+LAST SEEN\s+CLIENT EXPIRES\s+SERVING EXPIRES\s+KEY\s+AGENT\s+FIPS\s+STATE/);
    assert.match(t.stdout, /n-a\s+yes\s+.*ECDSA-P256\s+0.1.0\s+no\s+active/);
    assert.match(t.stdout, /n-b\s+no\s+/);
  });

  it("a campaign over 50 agents with --max-in-flight 5 never exceeds 5, survives a server restart mid-way, and rotates all", async function () {
    this.timeout(240_000);
    const port = await freePort();
    const dir = path.join(tempDir(), "server");
    let server = await startServer({ dir, listen: `127.0.0.1:${port}` });
    const agents: FleetAgent[] = [];
    for (let i = 0; i < 50; i++) agents.push(await startFleetAgent(server, `w-${String(i).padStart(2, "0")}`));
    closers.push(async () => Promise.all(agents.map((a) => a.agent.close())));
    await until("all 50 connected", () => server.hub.connectedNodes().length === 50, 60_000);
    const before = new Map(agents.map((a) => [a.name, serial(a, "client")]));
    // Count rotations in flight at the wire: a rotate sent and not yet acked (or its connection lost).
    let inFlight = new Set<string>();
    let maxInFlight = 0;
    const watch = (s: TestServer) => {
      const send = s.hub.send.bind(s.hub);
      s.hub.send = (node, msg) => {
        const id = send(node, msg);
        if (id && msg.type === "rotate") {
          inFlight.add(node);
          maxInFlight = Math.max(maxInFlight, inFlight.size);
        }
        return id;
      };
      s.hub.on("ack", (node) => inFlight.delete(node));
      s.hub.on("disconnect", (node) => inFlight.delete(node));
    };
    watch(server);
    const r = await nodecert(["rotate", "--all", "--max-in-flight", "5", "--dir", dir, "--server", server.url]);
    assert.equal(r.code, 0, r.stderr);
    const id = /started campaign (\w+)/.exec(r.stdout)![1];
    await until("15 nodes rotated", async () => ((await server.campaigns.status(id))!.counts.done >= 15 ? true : undefined), 120_000);
    // Restart the control plane in the middle of the campaign.
    await server.close();
    inFlight = new Set();
    server = await startServer({ dir, listen: `127.0.0.1:${port}` });
    closers.push(() => server.close());
    watch(server);
    const done = await until(
      "campaign finished after the restart",
      async () => {
        const s = await server.campaigns.status(id);
        return s?.campaign.state === "done" ? s : undefined;
      },
      180_000,
    );
    assert.equal(done.counts.done, 50, JSON.stringify(done.counts));
    assert.equal(done.counts.failed, 0);
    assert.ok(maxInFlight <= 5, `at most 5 in flight at the wire, saw ${maxInFlight}`);
    assert.ok(maxInFlight >= 2, `rotations ran in parallel (saw ${maxInFlight})`);
    for (const a of agents) {
      assert.notEqual(serial(a, "client"), before.get(a.name), `${a.name} rotated`);
      const rec = await server.store.getCertificate(serial(a, "client"));
      assert.equal(rec?.node, a.name, "the installed certificate was issued by this server to that node");
    }
    assert.ok((await server.store.listAudit(2000)).some((e) => e.type === "renew.issued"));
  });

  it("an offline node is reported pending and rotated when it reconnects", async () => {
    const server = await startServer();
    closers.push(() => server.close());
    const on = await startFleetAgent(server, "on-1");
    closers.push(() => on.agent.close());
    let off = await startFleetAgent(server, "off-1");
    await until("both connected", () => server.hub.connectedNodes().length === 2);
    await off.agent.close();
    await until("off-1 offline", () => !server.hub.connected("off-1"));
    const before = serial(off, "client");
    const c = await server.campaigns.start({ nodes: "all", maxInFlight: 2, which: ["client", "serving"], reason: "offline test" });
    await until("on-1 done", async () => (await server.campaigns.status(c.id))!.nodes.find((n) => n.node === "on-1")?.state === "done");
    const mid = await nodecert(["rotations", c.id, "--dir", server.dir, "--server", server.url]);
    assert.match(mid.stdout, /off-1\s+pending\s+0/);
    // The node comes back (same root, no new join): it is rotated then.
    const { runAgent } = await import("../../src/agent/daemon.js");
    const { AgentConfig } = await import("../../src/config/agent.js");
    const agent = await runAgent({
      config: AgentConfig.parse({ root: off.root, server: server.url, caCertHash: server.pin, nodeName: "off-1", addresses: { only: ["127.0.0.1"] }, healthListen: "127.0.0.1:0", hooks: [], channel: { reconnectInitial: "50ms", reconnectMax: "500ms" } }),
      logger: (await import("../support/helpers.js")).quietLogger(),
      scheduler: () => ({ stop() {}, execute: async () => undefined }),
    });
    closers.push(() => agent.close());
    off = { ...off, agent };
    await until("campaign done", async () => (await server.campaigns.status(c.id))!.campaign.state === "done");
    assert.notEqual(serial(off, "client"), before);
  });

  it("a campaign reaches a connected node that sorts after more than a page of offline ones", async () => {
    const server = await startServer();
    closers.push(() => server.close());
    // 70 joined nodes that are offline: the campaign reads pending nodes 64 at a time, by name.
    const { id: tokenId } = parseToken(await server.createToken({ uses: 70 }))!;
    for (let i = 0; i < 70; i++) {
      const node = `gone-${String(i).padStart(2, "0")}`;
      const now = new Date();
      assert.ok(await server.store.commitJoin({ tokenId, now, node, facts: { hostname: node, addresses: ["127.0.0.1"], agentVersion: "0.1.0" }, certificates: [], audit: { time: now, type: "join.issued", node } }));
    }
    const a = await startFleetAgent(server, "zz-on");
    closers.push(() => a.agent.close());
    await until("zz-on connected", () => server.hub.connected("zz-on"));
    const before = serial(a, "client");
    const c = await server.campaigns.start({ nodes: "all", maxInFlight: 2, which: ["client"], reason: "paging" });
    await until("zz-on rotated", async () => (await server.campaigns.status(c.id))!.nodes.find((n) => n.node === "zz-on")?.state === "done");
    assert.notEqual(serial(a, "client"), before);
    const s = (await server.campaigns.status(c.id))!;
    assert.deepEqual(s.counts, { pending: 70, "in-flight": 0, done: 1, failed: 0 });
    assert.equal(s.campaign.state, "running", "the offline nodes are still to do");
  });

  it("evict: the node can no longer renew or connect, and its agent says so", async () => {
    const server = await startServer();
    closers.push(() => server.close());
    const a = await startFleetAgent(server, "ev-1");
    closers.push(() => a.agent.close());
    await until("connected", () => server.hub.connected("ev-1"));
    const r = await nodecert(["evict", "ev-1", "--reason", "decommissioned", "--dir", server.dir, "--server", server.url]);
    assert.equal(r.code, 0, r.stderr);
    await until("agent knows", async () => (await a.agent.readiness()).reason.includes("evicted"));
    const ready = await a.agent.readiness();
    assert.equal(ready.ready, false);
    assert.match(ready.reason, /evicted by the control plane at .*: decommissioned/);
    assert.ok(a.lines.some((l) => /this node was evicted by the control plane/.test(l)));
    assert.equal(server.hub.connected("ev-1"), false);
    const renew = await a.agent.renewer.renew(["client"], { force: true });
    assert.match(renew.error ?? "", /HTTP 403 denied \(rule evicted\): node "ev-1" was evicted/);
    const status = await nodecert(["status", "--root", a.root]);
    assert.match(status.stdout, /EVICTED: .*decommissioned/);
    // A raw connection with its certificate is refused too.
    const pem = current(a, "client");
    const res = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`wss://127.0.0.1:${server.port}${CHANNEL_PATH}`, { ca: server.authority.trustBundle, cert: pem, key: pem, minVersion: "TLSv1.3" });
      ws.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
      ws.on("open", () => resolve(101));
      ws.on("error", () => undefined);
    });
    assert.equal(res, 403);
  });

  it("bad input on the channel: each is closed or ignored with a clear log line, and the server keeps serving", async () => {
    const server = await startServer();
    closers.push(() => server.close());
    const a = await startFleetAgent(server, "bad-1");
    await a.agent.close(); // we speak for the node ourselves, with its certificate
    const pem = current(a, "client");
    const url = `wss://127.0.0.1:${server.port}${CHANNEL_PATH}`;
    const open = async () => {
      const ws = new WebSocket(url, { ca: server.authority.trustBundle, cert: pem, key: pem, minVersion: "TLSv1.3" });
      await new Promise((r, j) => (ws.once("open", r), ws.once("error", j)));
      return ws;
    };
    const closedWith = (ws: WebSocket, payload: string | Buffer) =>
      new Promise<{ code: number; reason: string }>((resolve) => {
        ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() }));
        ws.send(payload);
      });
    const cases: [string, string | Buffer, RegExp][] = [
      ["malformed JSON", "{nope", /frame is not valid JSON/],
      ["unknown type", JSON.stringify({ v: 1, id: "x", type: "reboot" }), /invalid \\"reboot\\" message/],
      ["oversized frame", JSON.stringify({ v: 1, id: "x", type: "status", certificates: [], pad: "x".repeat(100 * 1024) }), /exceeds 65536/],
      ["forged hello", JSON.stringify({ v: 1, id: "h", type: "hello", nodeName: "control-plane-1", agentVersion: "x", certificates: [], crypto: { provider: "x", fips: false }, addresses: [] }), /hello claims node \\"control-plane-1\\" but the client certificate is for \\"bad-1\\"/],
    ];
    for (const [what, payload, re] of cases) {
      const res = await closedWith(await open(), payload);
      assert.equal(res.code, CLOSE_POLICY_VIOLATION, what);
      assert.ok(server.logLines.some((l) => /closing channel: policy violation/.test(l) && re.test(l)), `${what} logged: ${re}`);
    }
    // An ack for a command never sent is logged and ignored; the connection stays up.
    const ws = await open();
    ws.send(JSON.stringify({ v: 1, id: "a1", type: "ack", commandId: "never-sent", result: "ok" }));
    await until("logged", () => server.logLines.some((l) => /ignoring an ack for a command this server never sent/.test(l) && /never-sent/.test(l)));
    assert.equal(ws.readyState, WebSocket.OPEN);
    ws.close();
    // Unauthenticated and non-node upgrades are refused before any WebSocket exists.
    const status = (o: object) =>
      new Promise<{ code: number; body: string }>((resolve) => {
        const w = new WebSocket(url, { ca: server.authority.trustBundle, minVersion: "TLSv1.3", ...o });
        w.on("unexpected-response", (_req, res) => {
          let b = "";
          res.on("data", (c) => (b += c));
          res.on("end", () => resolve({ code: res.statusCode ?? 0, body: b }));
        });
        w.on("open", () => resolve({ code: 101, body: "" }));
        w.on("error", () => undefined);
      });
    const anon = await status({});
    assert.equal(anon.code, 401);
    assert.match(anon.body, /needs the node's current client certificate/);
    const admin = readFileSync(server.paths.adminCert, "utf8") + readFileSync(server.paths.adminKey, "utf8");
    const asAdmin = await status({ cert: admin, key: admin });
    assert.equal(asAdmin.code, 403);
    assert.match(asAdmin.body, /not a kubelet client certificate/);
    const health = await (await import("../../src/platform/https-client.js")).requestJson(`${server.url}/healthz`, { tls: { ca: server.authority.trustBundle } });
    assert.equal(health.status, 200, "the server is still up");
  });

  it("heartbeats terminate a peer that stops answering", async () => {
    const server = await startServer({ heartbeatMs: 100 });
    closers.push(() => server.close());
    const a = await startFleetAgent(server, "hb-1");
    await a.agent.close();
    const pem = current(a, "client");
    const ws = new WebSocket(`wss://127.0.0.1:${server.port}${CHANNEL_PATH}`, { ca: server.authority.trustBundle, cert: pem, key: pem, minVersion: "TLSv1.3", autoPong: false });
    await new Promise((r) => ws.once("open", r));
    const closed = await new Promise<number>((r) => ws.once("close", (code) => r(code)));
    assert.equal(closed, 1006, "terminated, not closed politely");
    assert.ok(server.logLines.some((l) => /did not answer the heartbeat; terminating/.test(l) && /hb-1/.test(l)));
  });

  it("after a server restart, all agents reconnect within the backoff bound", async function () {
    this.timeout(90_000);
    // startFleetAgent's channel: reconnectInitial 50ms, reconnectMax 500ms (the cap).
    const INITIAL = 50;
    const CAP = 500;
    const N = 20;
    const port = await freePort();
    const dir = path.join(tempDir(), "server");
    let server = await startServer({ dir, listen: `127.0.0.1:${port}` });
    const agents: FleetAgent[] = [];
    closers.push(async () => Promise.all(agents.map((a) => a.agent.close())));
    for (let i = 0; i < N; i++) agents.push(await startFleetAgent(server, `rs-${String(i).padStart(2, "0")}`));
    await until(`all ${N} connected`, () => server.hub.connectedNodes().length === N);
    type Scheduled = { inMs: number; attempt: number };
    const scheduled = (lines: string[]): Scheduled[] => lines.filter((l) => /"channel reconnect scheduled"/.test(l)).map((l) => JSON.parse(l) as Scheduled);
    const connects = (lines: string[]) => lines.filter((l) => /"channel connected"/.test(l)).length;
    const down = agents.map((a) => a.lines.length);
    await server.close();
    // Stay down until every agent has retried past the point where the ceiling reaches the cap
    // (from the 5th retry on, 50·2^(n−1) ≥ 500), so retries bounded by the cap itself are checked.
    await until("every agent backed off to the cap", () => agents.every((a, i) => scheduled(a.lines.slice(down[i])).some((s) => s.attempt >= 6)), 60_000);
    server = await startServer({ dir, listen: `127.0.0.1:${port}` });
    closers.push(() => server.close());
    const up = agents.map((a) => a.lines.length);
    await until(`all ${N} reconnected`, () => server.hub.connectedNodes().length === N && agents.every((a) => a.agent.channel?.connected), 60_000);
    for (const [i, a] of agents.entries()) {
      assert.ok(server.hub.connected(a.name), `${a.name} is connected to the new server`);
      const retries = scheduled(a.lines.slice(down[i]));
      // Full jitter: the n-th retry (logged as attempt n) waits in [0, min(cap, initial·2^(n−1))].
      for (const r of retries) {
        const ceiling = Math.min(CAP, INITIAL * 2 ** (r.attempt - 1));
        assert.ok(Number.isInteger(r.inMs) && r.inMs >= 0 && r.inMs <= ceiling, `${a.name}: retry ${r.attempt} waited ${r.inMs} ms, outside [0, ${ceiling}]`);
      }
      assert.ok(retries.some((r) => Math.min(CAP, INITIAL * 2 ** (r.attempt - 1)) === CAP), `${a.name} reached the cap`);
      // Back on the first or second try once the server listens: one dial may have been refused just
      // before the listen, and its log line can land just after our mark.
      const after = a.lines.slice(up[i]);
      const firstConnect = after.findIndex((l) => /"channel connected"/.test(l));
      assert.ok(firstConnect >= 0, `${a.name} logged its reconnect`);
      assert.ok(scheduled(after.slice(0, firstConnect)).length <= 2, `${a.name} needed ${scheduled(after.slice(0, firstConnect)).length} more retries after the server was back`);
      assert.equal(connects(a.lines.slice(down[i])), 1, `${a.name} connected exactly once after the restart`);
    }
  });
});

describe("e2e: CA rotation with overlapping trust", function () {
  this.timeout(180_000);
  let server: TestServer;
  let agents: FleetAgent[];
  after(async () => {
    for (const a of agents ?? []) await a.agent.close().catch(() => undefined);
    await server?.close();
  });

  /**
   * mTLS between two peers, each trusting `bundle`, with openssl on both sides: `serverPeer` is a
   * serving certificate (serverAuth), `clientPeer` a client certificate (clientAuth).
   */
  async function mtls(oldPeer: string, newPeer: string, bundle: string): Promise<{ ok: boolean; out: string }> {
    const d = tempDir();
    const f = (n: string, c: string) => (writeFileSync(path.join(d, n), c), path.join(d, n));
    const [oldF, newF, caF] = [f("old.pem", oldPeer), f("new.pem", newPeer), f("ca.crt", bundle)];
    const srv = await opensslServer(["-cert", oldF, "-key", oldF, "-CAfile", caF, "-Verify", "1", "-verify_return_error", "-tls1_3"]);
    try {
      const c = await run("openssl", ["s_client", "-connect", `127.0.0.1:${srv.port}`, "-cert", newF, "-key", newF, "-CAfile", caF, "-verify_return_error", "-tls1_3"], { input: "" });
      await new Promise((r) => setTimeout(r, 100));
      const ok = c.code === 0 && /Verify return code: 0 \(ok\)/.test(c.stdout) && !/alert|error/i.test(srv.output().split("ACCEPT")[1] ?? "");
      return { ok, out: c.stdout + c.stderr + srv.output() };
    } finally {
      srv.stop();
    }
  }

  it("prepare → switch → finish: mTLS between old- and new-CA peers works at every phase; afterwards the old CA is gone everywhere", async function () {
    requireTool(this, "openssl");
    // The operator drives the phases here so each can be observed; autoAdvance is tested below.
    server = await startServer({ overrides: { caRotation: { autoAdvance: false } } });
    agents = [];
    for (const n of ["ca-a", "ca-b", "ca-c"]) agents.push(await startFleetAgent(server, n));
    await until("all connected", () => server.hub.connectedNodes().length === 3);
    const admin = (...args: string[]) => nodecert([...args, "--dir", server.dir, "--server", server.url]);
    const oldCaFp = certificateInfo(server.ca.issuer.certPem).fingerprint256;
    const oldPeer = current(agents[0], "serving"); // issued by the old CA
    const bundleOf = (a: FleetAgent) => readFileSync(nodeLayout(a.root).caFile, "utf8");

    // Prepare, with one node offline: the connected nodes install old + new; the offline one blocks.
    await agents[2].agent.close();
    await until("ca-c offline", () => !server.hub.connected("ca-c"));
    const started = await admin("ca", "rotate");
    assert.equal(started.code, 0, started.stderr);
    assert.match(started.stdout, /phase prepare/);
    await until("bundle installed on the connected nodes", () => agents.slice(0, 2).every((a) => splitCertificates(bundleOf(a)).length === 2));
    const blocked = await admin("ca", "advance");
    assert.match(blocked.stdout, /phase prepare/);
    assert.match(blocked.stdout, /ca-c: has not installed the old\+new trust bundle \(offline\)/);
    const next = await loadCa(nextCaPaths(server.paths));
    const k = await generateKeyPair("ECDSA-P256");
    const spki = await crypto.subtle.exportKey("spki", k.publicKey);
    const newPeer = (await sign(next, { owner: "peer", subject: nodeSubject("peer-new"), spki, kind: "client", lifetimeMs: 86_400_000 }, new Date(), random)).chainPem + (await exportPrivateKeyPem(k.privateKey));
    for (const a of agents.slice(0, 2)) {
      const p = await mtls(oldPeer, newPeer, bundleOf(a));
      assert.ok(p.ok, `prepare, ${a.name}'s bundle: ${p.out}`);
    }

    // The offline node comes back and catches up on the bundle; then the operator switches.
    const { runAgent } = await import("../../src/agent/daemon.js");
    const { AgentConfig } = await import("../../src/config/agent.js");
    const c = agents[2];
    c.agent = await runAgent({
      config: AgentConfig.parse({ root: c.root, server: server.url, caCertHash: server.pin, nodeName: "ca-c", addresses: { only: ["127.0.0.1"] }, healthListen: "127.0.0.1:0", hooks: [], channel: { reconnectInitial: "50ms", reconnectMax: "500ms" } }),
      logger: (await import("../support/helpers.js")).quietLogger(),
      scheduler: () => ({ stop() {}, execute: async () => undefined }),
    });
    await until("ca-c caught up", () => splitCertificates(bundleOf(c)).length === 2);
    await until("nothing blocks", async () => (await server.caRotation.status()).blockers.length === 0);
    const sw = await admin("ca", "advance");
    assert.match(sw.stdout, /phase switch/);
    const rotation = (await server.caRotation.state())!;
    await until("re-issue campaign done", async () => (await server.campaigns.status(rotation.campaignId!))?.campaign.state === "done", 60_000);
    await until("all nodes report new-CA certificates", async () => (await server.caRotation.status()).blockers.length === 0, 30_000);
    const newFp = certificateInfo(next.issuer.certPem).fingerprint256;
    for (const a of agents) {
      assert.equal((await server.store.getCertificate(serial(a, "client")))?.issuerFingerprint, newFp, `${a.name} re-issued`);
      assert.equal(splitCertificates(bundleOf(a)).length, 2, "switch keeps both CAs in the bundle");
      const p = await mtls(oldPeer, current(a, "client"), bundleOf(a));
      assert.ok(p.ok, `switch, ${a.name}: ${p.out}`);
    }

    // Finish: the old CA leaves the bundle everywhere.
    const fin = await admin("ca", "advance");
    assert.match(fin.stdout, /phase done/);
    assert.notEqual(newFp, oldCaFp);
    await until("bundles pushed", () => agents.every((a) => splitCertificates(bundleOf(a)).length === 1));
    for (const a of agents) {
      assert.equal(certificateInfo(splitCertificates(bundleOf(a))[0]).fingerprint256, newFp, `${a.name} trusts only the new CA`);
      for (const kind of ["client", "serving"] as const) {
        assert.equal((await server.store.getCertificate(serial(a, kind)))?.issuerFingerprint, newFp, `${a.name} ${kind} is from the new CA`);
      }
    }
    assert.equal(splitCertificates(server.authority.trustBundle).length, 1);
    assert.equal(splitCertificates(readFileSync(server.paths.adminCa, "utf8")).length, 1);
    assert.equal(certificateInfo(readFileSync(server.paths.tlsCert, "utf8")).issuer, certificateInfo(server.ca.issuer.certPem).subject, "the server's TLS certificate is from the new CA");
    const p3 = await mtls(oldPeer, current(agents[0], "client"), bundleOf(agents[0]));
    assert.equal(p3.ok, false, "after finish an old-CA certificate is no longer trusted");
    const p4 = await mtls(current(agents[1], "serving"), current(agents[0], "client"), bundleOf(agents[0]));
    assert.ok(p4.ok, `two new-CA peers after finish: ${p4.out}`);
    const s = await admin("ca", "status");
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stdout, /phase done/);
  });

  it("with autoAdvance the phases run by themselves and survive a server restart", async function () {
    const port = await freePort();
    const dir = path.join(tempDir(), "server");
    let s = await startServer({ dir, listen: `127.0.0.1:${port}` });
    const fleet = [await startFleetAgent(s, "auto-a"), await startFleetAgent(s, "auto-b")];
    try {
      await until("connected", () => s.hub.connectedNodes().length === 2);
      const oldFp = certificateInfo(s.ca.issuer.certPem).fingerprint256;
      await s.caRotation.start({});
      // Restart while the rotation runs; the new process resumes the phase from the store.
      await s.close();
      s = await startServer({ dir, listen: `127.0.0.1:${port}` });
      await until("done", async () => ((await s.caRotation.state())?.phase === "done" ? true : undefined), 90_000);
      const newFp = certificateInfo(s.ca.issuer.certPem).fingerprint256;
      assert.notEqual(newFp, oldFp);
      await until("bundles", () => fleet.every((a) => splitCertificates(readFileSync(nodeLayout(a.root).caFile, "utf8")).length === 1));
      for (const a of fleet) assert.equal((await s.store.getCertificate(serial(a, "serving")))?.issuerFingerprint, newFp);
    } finally {
      for (const a of fleet) await a.agent.close();
      await s.close();
    }
  });
});
