// The agent's local endpoints on node:http: the health server and the control socket answer bad
// requests with a clear 4xx (never a crash), and keep serving.
import { strict as assert } from "node:assert";
import http from "node:http";
import { statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { AgentConfig } from "../../src/config/agent.js";
import { nodeLayout } from "../../src/agent/layout.js";
import { Renewer } from "../../src/agent/renewer.js";
import { AgentMetrics } from "../../src/agent/metrics.js";
import { startHealthServer, type HealthServer } from "../../src/agent/http/health.js";
import { startControlSocket, type ControlServer } from "../../src/agent/http/control.js";
import { createLocalServer, listen, close } from "../../src/platform/local-http.js";
import { quietLogger, tempDir } from "../support/helpers.js";

interface Answer {
  status: number;
  type: string;
  body: string;
}

function request(where: { port: number } | { socketPath: string }, method: string, p: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ ...("port" in where ? { host: "127.0.0.1", port: where.port } : { socketPath: where.socketPath }), method, path: p, headers: body === undefined ? headers : { "content-length": String(Buffer.byteLength(body)), ...headers } }, (res) => {
      let data = "";
      res.on("data", (c) => (data += c));
      res.on("end", () => resolve({ status: res.statusCode!, type: String(res.headers["content-type"] ?? ""), body: data }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

function renewerOnEmptyNode(): Renewer {
  const root = path.join(tempDir(), "node");
  const config = AgentConfig.parse({ root, addresses: { only: ["127.0.0.1"] }, hooks: [] });
  const clock = () => new Date();
  return new Renewer({ config, layout: nodeLayout(root), logger: quietLogger(), clock, random: Math.random, identity: async () => ({ nodeName: "n1", facts: {} as never, servingSans: ["n1", "127.0.0.1"] }), setTimer: () => ({ cancel() {} }), metrics: new AgentMetrics(clock) });
}

describe("agent local HTTP (node:http)", () => {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c();
  });

  it("health server: /healthz, /readyz 503 with the reason, /metrics in the Prometheus format; 404, 405 and 413 otherwise", async () => {
    const metrics = new AgentMetrics(() => new Date());
    metrics.setCertificate("client", new Date("2030-01-01T00:00:00Z"), undefined);
    const h: HealthServer = await startHealthServer("127.0.0.1:0", { joined: () => false, readiness: async () => ({ ready: false, reason: "not evaluated yet" }), metrics });
    closers.push(() => h.close());
    const at = { port: h.port };
    const healthz = await request(at, "GET", "/healthz");
    assert.deepEqual([healthz.status, JSON.parse(healthz.body)], [200, { ok: true, joined: false }]);
    assert.match(healthz.type, /^application\/json/);
    const readyz = await request(at, "GET", "/readyz");
    assert.deepEqual([readyz.status, JSON.parse(readyz.body)], [503, { ready: false, reason: "not evaluated yet" }]);
    const m = await request(at, "GET", "/metrics");
    assert.equal(m.status, 200);
    assert.match(m.type, /^text\/plain; version=0\.0\.4/);
    assert.match(m.body, /^nodecert_certificate_expiry_timestamp_seconds\{kind="client"\} 1893456000$/m);
    assert.match(m.body, /^nodecert_ready 0$/m);
    const head = await request(at, "HEAD", "/healthz");
    assert.deepEqual([head.status, head.body], [200, ""]);
    assert.equal((await request(at, "GET", "/nope")).status, 404);
    assert.equal((await request(at, "POST", "/healthz", "{}", { "content-type": "application/json" })).status, 405);
    const big = await request(at, "GET", "/healthz", "x".repeat(2048), { "content-type": "application/json" });
    assert.equal(big.status, 413);
    assert.match(JSON.parse(big.body).error, /over the 1024-byte limit/);
    assert.equal((await request(at, "GET", "/healthz")).status, 200, "still serving");
  });

  it("control socket: 0600, replaces a stale socket file, refuses malformed requests with 400/413/415 and serves /v1/status", async () => {
    const socketPath = path.join(tempDir(), "control.sock");
    writeFileSync(socketPath, "left over by a killed agent");
    const c: ControlServer = await startControlSocket(socketPath, renewerOnEmptyNode());
    closers.push(() => c.close());
    assert.equal(statSync(socketPath).mode & 0o777, 0o600);
    const at = { socketPath };
    const json = { "content-type": "application/json" };
    const notJson = await request(at, "POST", "/v1/renew", "{kinds:", json);
    assert.deepEqual([notJson.status, JSON.parse(notJson.body)], [400, { error: "request body is not valid JSON" }]);
    const empty = await request(at, "POST", "/v1/renew", JSON.stringify({ kinds: [] }), json);
    assert.equal(empty.status, 400);
    assert.match(JSON.parse(empty.body).error, /kinds/);
    const unknown = await request(at, "POST", "/v1/renew", JSON.stringify({ kinds: ["client"], force: true, extra: 1 }), json);
    assert.equal(unknown.status, 400, "strict schema");
    assert.equal((await request(at, "POST", "/v1/renew", "kinds=client", { "content-type": "application/x-www-form-urlencoded" })).status, 415);
    assert.equal((await request(at, "POST", "/v1/renew", JSON.stringify({ kinds: ["client"], pad: "x".repeat(5000) }), json)).status, 413);
    const st = await request(at, "GET", "/v1/status");
    assert.equal(st.status, 200);
    const body = JSON.parse(st.body) as { decisions: { kind: string; action: string; reason: string }[]; consecutiveFailures: number };
    assert.deepEqual(body.decisions.map((d) => [d.kind, d.action, d.reason]), [["client", "urgent", "certificate is missing"], ["serving", "urgent", "certificate is missing"]]);
    assert.equal(body.consecutiveFailures, 0);
  });

  it("a route that throws answers 500 with the message and the server keeps serving", async () => {
    let calls = 0;
    const server = createLocalServer({ "GET /boom": async () => { calls++; throw new Error("disk on fire"); }, "GET /ok": async () => ({ body: { ok: true } }) }, { bodyLimit: 16 });
    await listen(server, { host: "127.0.0.1", port: 0 });
    closers.push(() => close(server));
    const at = { port: (server.address() as { port: number }).port };
    const boom = await request(at, "GET", "/boom");
    assert.deepEqual([boom.status, JSON.parse(boom.body)], [500, { error: "disk on fire" }]);
    assert.equal(calls, 1);
    assert.equal((await request(at, "GET", "/ok")).status, 200);
  });
});
