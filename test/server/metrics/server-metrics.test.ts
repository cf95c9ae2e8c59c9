// The control plane's /metrics, scraped from a real `nodecert server run` process (on its own
// loopback listener, not the mTLS API port) and parsed by promtool.
import { strict as assert } from "node:assert";
import { writeFileSync } from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { Proc } from "../../crypto/fips-support.js";
import { nodecert, requireTool, tempDir } from "../../support/helpers.js";
import { serverProcess, type ServerProcess } from "../../support/server-process.js";
import { until } from "../../support/fleet.js";
import { checkMetrics, sample } from "../../support/promtool.js";

describe("server metrics: /metrics of a real control-plane process", function () {
  this.timeout(180_000);
  let server: ServerProcess;
  const procs: Proc[] = [];
  before(async function () {
    requireTool(this, "promtool");
    server = await serverProcess();
    await server.start();
  });
  after(async () => {
    for (const p of procs) p.stop();
    await server?.stop();
  });
  const scrape = async () => (await fetch(server.metricsUrl()!)).text();

  it("listens on loopback only, apart from the API port, and needs no client certificate", async () => {
    const url = server.metricsUrl();
    assert.ok(url, `no "metrics listening" line in:\n${server.logs()}`);
    assert.match(url!, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    assert.notEqual(new URL(url!).port, String(server.port));
    const r = await fetch(url!);
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  });

  it("counts issued certificates by kind, denials by kind and rule, token failures by code; gauges connected agents and CA expiry", async () => {
    const before = await scrape();
    const issued = (kind: string, m: string) => sample(m, `nodecert_certificates_issued_total{kind="${kind}"}`) ?? 0;

    // A join: one client and one serving certificate.
    const root = path.join(tempDir(), "node");
    const j = await nodecert(["join", "--server", server.url, "--token", await server.createToken({ node: "met-1" }), "--ca-cert-hash", server.pin, "--root", root, "--node-name", "met-1", "--address", "127.0.0.1", "--fips", "off"]);
    assert.equal(j.code, 0, j.stderr);
    // A token that does not exist, and a join the policy denies (the token is bound to another node).
    const bad = await nodecert(["join", "--server", server.url, "--token", "abcdef.0123456789abcdef", "--ca-cert-hash", server.pin, "--root", path.join(tempDir(), "n2"), "--node-name", "met-2", "--address", "127.0.0.1", "--fips", "off"]);
    assert.notEqual(bad.code, 0);
    const denied = await nodecert(["join", "--server", server.url, "--token", await server.createToken({ node: "someone-else" }), "--ca-cert-hash", server.pin, "--root", path.join(tempDir(), "n3"), "--node-name", "met-3", "--address", "127.0.0.1", "--fips", "off"]);
    assert.notEqual(denied.code, 0);

    // The joined node's agent connects to the fleet channel.
    const cfg = path.join(tempDir(), "agent.yaml");
    writeFileSync(cfg, YAML.stringify({ root, server: server.url, caCertHash: server.pin, addresses: { only: ["127.0.0.1"] }, healthListen: "127.0.0.1:0", hooks: [], fips: "off" }));
    const agent = new Proc(["agent", "--config", cfg]);
    procs.push(agent);
    await agent.waitFor(/"message":"channel connected"/);
    const m = await until("the agent counted as connected", async () => {
      const t = await scrape();
      return sample(t, 'nodecert_agent_connected{node="met-1"}') === 1 && t;
    });
    assert.equal(issued("client", m) - issued("client", before), 1);
    assert.equal(issued("serving", m) - issued("serving", before), 1);
    assert.equal(sample(m, "nodecert_agents_connected"), 1);
    const deniedLines = m.split("\n").filter((l) => l.startsWith('nodecert_requests_denied_total{kind="join"'));
    assert.equal(deniedLines.length, 1, deniedLines.join("\n"));
    assert.match(deniedLines[0], /rule="[a-z-]+"\} 1$/);
    assert.ok(denied.stderr.includes(/rule="([a-z-]+)"/.exec(deniedLines[0])![1]), `the rule the join was told: ${denied.stderr}`);
    const tokenLines = m.split("\n").filter((l) => l.startsWith("nodecert_token_failures_total{"));
    assert.equal(tokenLines.length, 1, tokenLines.join("\n"));
    assert.match(tokenLines[0], /\} 1$/);
    assert.ok((sample(m, 'nodecert_store_operation_duration_seconds_count{operation="commitJoin"}') ?? 0) >= 1, "store latency of the join's commit");
    const caExpiry = m.split("\n").find((l) => l.startsWith('nodecert_ca_expiry_timestamp_seconds{role="anchor"'));
    assert.ok(caExpiry && Number(caExpiry.split(" ").pop()) > Date.now() / 1000 + 365 * 86400, `CA expiry: ${caExpiry}`);
    for (const p of ["prepare", "switch", "finishing"]) assert.equal(sample(m, `nodecert_ca_rotation_phase{phase="${p}"}`), 0);
    assert.equal(sample(m, 'nodecert_campaigns{state="running"}'), 0);

    // A campaign over the node shows its progress by state.
    const rot = await nodecert(["rotate", "--node", "met-1", "--dir", server.dir, "--server", server.url]);
    assert.equal(rot.code, 0, rot.stderr);
    const done = await until("the campaign finished", async () => {
      const t = await scrape();
      return sample(t, 'nodecert_campaigns{state="done"}') === 1 && t;
    });
    assert.ok(issued("client", done) - issued("client", m) >= 1, "the campaign's renewal was counted as issued");

    const check = await checkMetrics(done);
    assert.equal(check.code, 0, check.output);

    agent.stop();
    await until("the agent counted as disconnected", async () => sample(await scrape(), 'nodecert_agent_connected{node="met-1"}') === 0);
  });
});
