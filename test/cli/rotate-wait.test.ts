// `nodecert rotate --wait` and `nodecert ca rotate --wait`: live progress (a bar on a terminal, one
// line per change otherwise) and an exit code by outcome, so a script can wait for the fleet.
import { strict as assert } from "node:assert";
import { Writable } from "node:stream";
import type { CliEnv } from "../../src/cli/env.js";
import { progressBar, waitWithProgress, WAIT_EXIT, type Progress } from "../../src/cli/wait-progress.js";
import { campaignProgress, caRotationProgress } from "../../src/cli/rotate-wait.js";
import type { CampaignStatus } from "../../src/server/fleet/campaigns.js";
import type { CaRotationStatus } from "../../src/server/fleet/ca-rotation.js";
import { FakeClock, nodecert, startServer } from "../support/helpers.js";
import { startFleetAgent } from "../support/fleet.js";

function bufferEnv(clock: FakeClock, tty = false): CliEnv & { out: () => string; err: () => string } {
  let out = "";
  let err = "";
  const stdout = Object.assign(new Writable({ write: (c, _e, cb) => ((out += c.toString()), cb()) }), tty ? { isTTY: true } : {});
  const stderr = new Writable({ write: (c, _e, cb) => ((err += c.toString()), cb()) });
  return { stdout, stderr, env: {}, now: clock.now, exitCode: undefined, out: () => out, err: () => err };
}

/** A poll that replays `steps`, the fake clock advanced by every sleep. */
function scripted(steps: (Progress | Error)[]) {
  let i = 0;
  return async () => {
    const s = steps[Math.min(i++, steps.length - 1)];
    if (s instanceof Error) throw s;
    return s;
  };
}

describe("cli: --wait follows a long operation with progress and ends with an exit code by outcome", function () {
  this.timeout(180_000);

  it("one line per change when stdout is not a terminal; exit 0 when every node is done", async () => {
    const clock = new FakeClock();
    const env = bufferEnv(clock);
    const p = (done: number, outcome?: Progress["outcome"]): Progress => ({ done, total: 3, detail: `nodes: ${done} done`, outcome });
    const outcome = await waitWithProgress(env, "campaign c1", scripted([p(0), p(0), p(1), p(1), p(1), p(3, "done")]), { intervalMs: 1000, sleep: async (ms) => clock.advance(ms) });
    assert.equal(outcome, "done");
    assert.equal(env.exitCode, 0);
    const lines = env.out().trim().split("\n");
    assert.deepEqual(lines.map((l) => l.replace(/^\d{4}-\d\d-\d\dT\S+ /, "")), ["campaign c1: 0/3 nodes: 0 done", "campaign c1: 1/3 nodes: 1 done", "campaign c1: 3/3 nodes: 3 done", "campaign c1 finished (exit 0)"]);
    assert.ok(!env.out().includes("\r"), "no carriage returns in a log");
  });

  it("on a terminal: one bar redrawn in place", async () => {
    const clock = new FakeClock();
    const env = bufferEnv(clock, true);
    await waitWithProgress(env, "campaign c2", scripted([{ done: 1, total: 4, detail: "x" }, { done: 4, total: 4, detail: "y", outcome: "done" }]), { intervalMs: 10, sleep: async (ms) => clock.advance(ms) });
    assert.match(env.out(), /^\r\x1b\[2K\[#{8}-{22}\]  25% campaign c2: 1\/4 x\r\x1b\[2K\[#{30}\] 100% campaign c2: 4\/4 y\ncampaign c2 finished \(exit 0\)\n$/);
    assert.equal(progressBar({ done: 0, total: 0 }, 4), "[####] 100%");
  });

  it("exit codes: failures 2, cancelled 3, --timeout 4, an unreachable server 1", async () => {
    const run = async (steps: (Progress | Error)[], timeoutMs?: number) => {
      const clock = new FakeClock();
      const env = bufferEnv(clock);
      await waitWithProgress(env, "op", scripted(steps), { intervalMs: 1000, timeoutMs, sleep: async (ms) => clock.advance(ms) });
      return env;
    };
    assert.equal((await run([{ done: 2, total: 2, detail: "", outcome: "failed" }])).exitCode, WAIT_EXIT.failed);
    assert.equal((await run([{ done: 0, total: 2, detail: "", outcome: "cancelled" }])).exitCode, WAIT_EXIT.cancelled);
    const slow = await run([{ done: 0, total: 2, detail: "" }], 5000);
    assert.equal(slow.exitCode, WAIT_EXIT.timeout);
    assert.match(slow.out(), /op is still running \(gave up waiting; it goes on on the server\) \(exit 4\)/);
    const down = await run([new Error("cannot reach https://cp:9443: ECONNREFUSED")]);
    assert.equal(down.exitCode, WAIT_EXIT.error);
    assert.match(down.err(), /op: cannot read progress: cannot reach .*ECONNREFUSED/);
  });

  it("campaign and CA rotation states map to progress and outcomes", () => {
    const camp = (state: "running" | "done" | "cancelled", counts: CampaignStatus["counts"]) => ({ campaign: { id: "c", state }, counts, nodes: [] }) as unknown as CampaignStatus;
    assert.deepEqual(campaignProgress(camp("running", { pending: 1, "in-flight": 1, done: 1, failed: 0 })), { done: 1, total: 3, detail: "nodes: 1 done, 0 failed, 1 in flight, 1 pending", outcome: undefined });
    assert.equal(campaignProgress(camp("done", { pending: 0, "in-flight": 0, done: 2, failed: 1 })).outcome, "failed");
    assert.equal(campaignProgress(camp("done", { pending: 0, "in-flight": 0, done: 3, failed: 0 })).outcome, "done");
    assert.equal(campaignProgress(camp("cancelled", { pending: 3, "in-flight": 0, done: 0, failed: 0 })).outcome, "cancelled");
    const ca = (phase: string, blockers: string[] = [], id = "r1") => ({ rotation: { id, phase }, blockers, bundleCertificates: 2, joinPins: [] }) as unknown as CaRotationStatus;
    assert.deepEqual(caRotationProgress(ca("switch", ["n1: old trust"]), "r1"), { done: 1, total: 3, detail: "phase switch; blocked by 1: n1: old trust", outcome: undefined });
    assert.equal(caRotationProgress(ca("done"), "r1").outcome, "done");
    assert.equal(caRotationProgress(ca("prepare", [], "r2"), "r1").outcome, "cancelled");
  });

  it("the built CLI against a real server and two agents: rotate --wait and ca rotate --wait exit 0 with a line per change", async () => {
    const server = await startServer();
    const agents = [await startFleetAgent(server, "wait-1"), await startFleetAgent(server, "wait-2")];
    try {
      const rot = await nodecert(["rotate", "--all", "--wait", "--interval", "100ms", "--timeout", "60s", "--dir", server.dir, "--server", server.url]);
      assert.equal(rot.code, 0, rot.stdout + rot.stderr);
      assert.match(rot.stdout, /campaign \w+: 2\/2 nodes: 2 done, 0 failed, 0 in flight, 0 pending\n/);
      assert.match(rot.stdout, /campaign \w+ finished \(exit 0\)\n$/);
      const ca = await nodecert(["ca", "rotate", "--wait", "--interval", "100ms", "--timeout", "90s", "--dir", server.dir, "--server", server.url]);
      assert.equal(ca.code, 0, ca.stdout + ca.stderr);
      assert.match(ca.stdout, /CA rotation \S+: 3\/3 phase done\n/);
      assert.match(ca.stdout, /CA rotation \S+ finished \(exit 0\)\n$/);
    } finally {
      for (const a of agents) await a.agent.close();
      await server.close();
    }
  });
});
