// The agent's /metrics, scraped from a real `nodecert agent` process and judged by promtool: the
// kubelet-named certificate-manager metrics carry the kubelet's meaning beside nodecert's own.
import { strict as assert } from "node:assert";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { Proc } from "../crypto/fips-support.js";
import { nodecert, requireTool, tempDir } from "../support/helpers.js";
import { serverProcess, type ServerProcess } from "../support/server-process.js";
import { checkMetrics, sample } from "../support/promtool.js";
import { until } from "../support/fleet.js";
import { certificateInfo } from "../../src/pki/certificate-info.js";
import { layoutFor } from "../../src/agent/layout.js";
import { KUBELET_COUNTERS_WITHOUT_TOTAL } from "../../src/agent/metrics-kubelet.js";

/** promtool's only complaint may be the kubelet's own counters lacking "_total". */
function assertPromtoolAccepts(check: Awaited<ReturnType<typeof checkMetrics>>): void {
  assert.ok(check.code === 0 || check.code === 3, `promtool could not parse the exposition (exit ${check.code}): ${check.output}`);
  const unexpected = check.problems.filter((p) => !KUBELET_COUNTERS_WITHOUT_TOTAL.some((n) => p === `${n} counter metrics should have "_total" suffix`));
  assert.deepEqual(unexpected, [], "lint notes other than the kubelet's own counter names");
}

describe("agent metrics: kubelet-named certificate-manager metrics from a real agent process", function () {
  this.timeout(180_000);
  const procs: Proc[] = [];
  let server: ServerProcess;
  before(async function () {
    requireTool(this, "promtool");
    server = await serverProcess();
    await server.start();
  });
  after(async () => {
    for (const p of procs) p.stop();
    await server?.stop();
  });

  const agentConfig = (o: Record<string, unknown>) => {
    const cfg = path.join(tempDir(), "agent.yaml");
    writeFileSync(cfg, YAML.stringify({ server: server.url, caCertHash: server.pin, addresses: { only: ["127.0.0.1"] }, healthListen: "127.0.0.1:0", hooks: [], fips: "off", dangerWindow: "36h", ...o }));
    return cfg;
  };
  const startAgent = async (cfg: string) => {
    const p = new Proc(["agent", "--config", cfg]);
    procs.push(p);
    const m = await p.waitFor(/"message":"health endpoint".*"url":"(http:\/\/127\.0\.0\.1:\d+)\/healthz"/);
    return { proc: p, metrics: async () => (await fetch(`${m[1]}/metrics`)).text() };
  };

  it("a node without certificates reports +Inf TTLs, as the kubelet does for an unused certificate", async () => {
    const a = await startAgent(agentConfig({ root: path.join(tempDir(), "empty") }));
    const m = await a.metrics();
    assert.equal(sample(m, "kubelet_certificate_manager_client_ttl_seconds"), Infinity);
    assert.equal(sample(m, "kubelet_certificate_manager_server_ttl_seconds"), Infinity);
    assert.equal(sample(m, "kubelet_certificate_manager_client_expiration_renew_errors"), 0);
    assert.equal(sample(m, "nodecert_danger_window_seconds"), 36 * 3600);
    assertPromtoolAccepts(await checkMetrics(m));
    a.proc.stop();
  });

  it("TTLs are seconds to each installed certificate's notAfter; renew errors count per kind; promtool parses it all", async () => {
    const root = path.join(tempDir(), "node");
    const tokenFile = path.join(tempDir(), "token");
    writeFileSync(tokenFile, (await server.createToken({ node: "kmet-1" })) + "\n");
    chmodSync(tokenFile, 0o600);
    const cfg = agentConfig({ root, tokenFile, nodeName: "kmet-1" });
    const a = await startAgent(cfg);
    await a.proc.waitFor(/"message":"joined"/);
    const layout = layoutFor({ root } as never);
    // "joined" is logged before the run that installed the certificates evaluates them.
    const m = await until("the installed certificates in /metrics", async () => {
      const t = await a.metrics();
      return Number.isFinite(sample(t, "kubelet_certificate_manager_server_ttl_seconds")) && Number.isFinite(sample(t, "kubelet_certificate_manager_client_ttl_seconds")) && t;
    });
    const now = Date.now() / 1000;
    for (const [kind, name] of [["client", "kubelet_certificate_manager_client_ttl_seconds"], ["serving", "kubelet_certificate_manager_server_ttl_seconds"]] as const) {
      const notAfter = certificateInfo(readFileSync(layout.current(kind), "utf8")).notAfter.getTime() / 1000;
      const ttl = sample(m, name)!;
      assert.ok(Math.abs(ttl - (notAfter - now)) < 120, `${name} ${ttl} vs notAfter-now ${notAfter - now}`);
      assert.ok(Math.abs(sample(m, `nodecert_certificate_ttl_seconds{kind="${kind}"}`)! - ttl) < 120, "the same TTL under nodecert's name");
    }
    assert.equal(sample(m, "kubelet_certificate_manager_client_expiration_renew_errors"), 0);
    assert.equal(sample(m, "kubelet_server_expiration_renew_errors"), 0);
    assertPromtoolAccepts(await checkMetrics(m));

    // With the control plane gone, a forced client renewal fails: only the client counter moves.
    await server.stop();
    const r1 = await nodecert(["renew", "client", "--force", "--config", cfg]);
    assert.notEqual(r1.code, 0, "the renewal cannot succeed without the server");
    const m1 = await a.metrics();
    assert.equal(sample(m1, "kubelet_certificate_manager_client_expiration_renew_errors"), 1);
    assert.equal(sample(m1, "kubelet_server_expiration_renew_errors"), 0);
    const r2 = await nodecert(["renew", "serving", "--force", "--config", cfg]);
    assert.notEqual(r2.code, 0);
    const m2 = await a.metrics();
    assert.equal(sample(m2, "kubelet_certificate_manager_client_expiration_renew_errors"), 1);
    assert.equal(sample(m2, "kubelet_server_expiration_renew_errors"), 1);
    assert.equal(sample(m2, 'nodecert_renewals_total{kind="serving",result="failure"}'), 1);
    assertPromtoolAccepts(await checkMetrics(m2));
    await server.start();
  });
});
