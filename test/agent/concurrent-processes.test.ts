import { strict as assert } from "node:assert";
import path from "node:path";
import { ROOT, run } from "../support/helpers.js";

// Runs scripts/concurrent-renew.ts: a daemon renewing in a loop (scripts/crash-child.ts, no
// control socket) and one-shot `nodecert renew all --force` processes (the built bin/nodecert)
// started against the same root at random moments, some of either SIGKILLed. The node store's
// lock makes them take turns. About 30 s on 2 idle cores; the cap allows for a loaded machine.
describe("agent: a daemon and one-shot renews on one root take turns under the node store's lock", function () {
  it("random one-shots and kill -9s: 0 torn pairs, state.json always loads, every contention reported plainly, no lineage refusal", async function () {
    this.timeout(400_000);
    const tsx = path.join(ROOT, "node_modules/tsx/dist/esm/index.mjs");
    const r = await run(process.execPath, ["--import", tsx, "scripts/concurrent-renew.ts", "--json", "--one-shots", "16", "--daemon-kills", "3", "--max-seconds", "300"], { cwd: ROOT, timeoutMs: 380_000 });
    let report: Record<string, unknown>;
    try {
      report = JSON.parse(r.stdout) as Record<string, unknown>;
    } catch {
      assert.fail(`the harness printed no JSON report (exit ${r.code}):\n${r.stdout}\n${r.stderr.slice(-2000)}`);
    }
    const summary = JSON.stringify(report, null, 2);
    assert.equal(report.tornPairs, 0, summary);
    assert.equal(report.stateReadFailures, 0, summary);
    assert.ok((report.stateReads as number) > 100, summary);
    assert.equal(report.violations, 0, summary);
    assert.equal(report.lineageRefusals, 0, summary);
    assert.ok((report.oneShotsRenewed as number) > 0, summary);
    assert.ok((report.daemonRenewals as number) > 0, summary);
    assert.ok((report.daemonKills as number) >= 1, summary);
    // The two really met: some one-shot had to wait for the other process's lock.
    assert.ok((report.contentionWaits as number) > 0, summary);
    assert.equal(r.code, 0, summary);
  });
});
