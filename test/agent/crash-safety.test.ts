import { strict as assert } from "node:assert";
import path from "node:path";
import { ROOT, run } from "../support/helpers.js";

// Runs scripts/crash-safety.ts: a real control plane on loopback, one node, and an agent process
// SIGKILLed at random points of startup recovery and of a tight forced-renewal loop. The full
// default (≥ 200 completed renewals, ≥ 100 kills) takes about 2 minutes on 2 cores; the cap is
// generous because a loaded CI machine starts processes several times slower.
describe("agent: kill -9 during renewal and install never leaves a torn or mismatched pair", function () {
  it("≥ 200 renewals and ≥ 100 SIGKILLs: 0 violations, no lineage lockout, still renews after the last kill", async function () {
    this.timeout(660_000);
    const tsx = path.join(ROOT, "node_modules/tsx/dist/esm/index.mjs");
    // --max-seconds stops the harness by itself (reporting the shortfall) before mocha's timeout.
    const r = await run(process.execPath, ["--import", tsx, "scripts/crash-safety.ts", "--json", "--renewals", "200", "--kills", "100", "--max-seconds", "600"], {
      cwd: ROOT,
      timeoutMs: 650_000,
    });
    let report: Record<string, unknown>;
    try {
      report = JSON.parse(r.stdout) as Record<string, unknown>;
    } catch {
      assert.fail(`the harness printed no JSON report (exit ${r.code}):\n${r.stdout}\n${r.stderr.slice(-2000)}`);
    }
    const summary = JSON.stringify(report, null, 2);
    assert.equal(report.violations, 0, summary);
    assert.equal(report.lineageRefusals, 0, summary);
    assert.equal(report.stuck, false, summary);
    assert.ok((report.renewals as number) >= 200, summary);
    assert.ok((report.kills as number) >= 100, summary);
    assert.equal(report.finalRenewal, true, summary);
    assert.equal(r.code, 0, summary);
    console.log(`      ${report.kills} kills, ${report.renewals} renewals, ${report.violations} violations, ${report.recoveriesWithWork} recoveries with work, ${report.wallSeconds} s`);
  });
});
