import { strict as assert } from "node:assert";
import path from "node:path";
import { runAgent, type RunningAgent } from "../../src/agent/daemon.js";
import { AgentConfig } from "../../src/config/agent.js";
import type { Scheduler } from "../../src/agent/scheduler.js";
import { nodeIdentity, type Identity } from "../../src/agent/identity.js";
import { writeFileAtomic } from "../../src/platform/files.js";
import { captureLogger, FakeClock, freePort, startServer, tempDir } from "../support/helpers.js";

// The cron tick and the retry timer are two callers of one Renewer.tick(): when both fire at the
// same moment (a 1-s schedule makes that routine), a due certificate must be renewed once.
describe("agent/renewer: the cron tick and the retry timer firing together renew a due certificate once", function () {
  this.timeout(120_000);
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
  });

  async function start(clock: FakeClock) {
    const server = await startServer({ clock, overrides: { certificates: { maxClientLifetime: "1h", maxServingLifetime: "1h" } } });
    closers.push(() => server.close());
    const root = path.join(tempDir(), "node");
    const tokenFile = path.join(tempDir(), "token");
    await writeFileAtomic(tokenFile, (await server.createToken()) + "\n");
    const jobs: (() => Promise<unknown>)[] = [];
    const timers: { fn: () => void; ms: number }[] = [];
    const scheduler: Scheduler = (_expr, job) => {
      jobs.push(job);
      return { stop() {}, execute: job };
    };
    const config = AgentConfig.parse({ root, server: server.url, caCertHash: server.pin, tokenFile, nodeName: "n1", addresses: { only: ["127.0.0.1"] }, healthListen: "127.0.0.1:0", hooks: [], schedule: "* * * * * *", channel: { enabled: false } });
    const identity = (): Promise<Identity> => nodeIdentity({ nodeName: "n1", addresses: { includeLoopback: true, includeLinkLocal: false, extra: [], only: ["127.0.0.1"] }, facts: async () => ({}) });
    const agent: RunningAgent = await runAgent({
      config,
      logger: captureLogger("agent").logger,
      clock: clock.now,
      identity,
      scheduler,
      setTimer: (fn, ms) => {
        const t = { fn, ms };
        timers.push(t);
        return { cancel: () => void (timers.includes(t) && timers.splice(timers.indexOf(t), 1)) };
      },
    });
    closers.push(() => agent.close());
    await agent.joined;
    return { server, agent, jobs, timers, config };
  }

  it("50 due events at a 1-s schedule, each hit by two checks at once: exactly one renewal per due certificate", async () => {
    const clock = new FakeClock(Date.now());
    const { server, agent, jobs } = await start(clock);
    const issued = async () => (await server.store.listCertificates("n1")).length;
    const renewalsPerKind = { client: 0, serving: 0 };
    const before = await issued();
    for (let event = 0; event < 50; event++) {
      const due = Math.max(...agent.renewer.lastDecisions.map((x) => x.renewAt!.getTime()));
      clock.t = due + 1000;
      // The cron job and the retry timer both run the check in the same turn.
      const outs = (await Promise.all([jobs[0](), agent.renewer.tick()])) as { renewed: { kind: "client" | "serving" }[] }[];
      const kinds = outs.flatMap((o) => o.renewed.map((r) => r.kind));
      for (const k of new Set(kinds)) renewalsPerKind[k]++;
      await agent.renewer.idle();
      const after = await issued();
      assert.equal(after - before, 2 * (event + 1), `event ${event}: ${after - before} renewals served for ${2 * (event + 1)} due certificates`);
    }
    assert.deepEqual(renewalsPerKind, { client: 50, serving: 50 });
  });

  it("with the server down, two checks at once count one failure and leave one retry pending", async () => {
    const clock = new FakeClock(Date.now());
    const { agent, timers, config } = await start(clock);
    agent.renewer.updateConfig({ ...config, server: `https://127.0.0.1:${await freePort()}` });
    clock.t = Math.max(...agent.renewer.lastDecisions.map((x) => x.renewAt!.getTime())) + 1000;
    await Promise.all([agent.tick(), agent.renewer.tick()]);
    await agent.renewer.idle();
    assert.equal(agent.renewer.consecutiveFailures, 1);
    assert.equal(timers.length, 1, "one retry pending");
    // The retry timer and the next cron tick fire together: one more failure, not two.
    clock.t = agent.renewer.nextAttemptAt!.getTime() + 1;
    const retry = timers.shift()!;
    await Promise.all([(async () => retry.fn())(), agent.tick()]);
    await agent.renewer.idle();
    assert.equal(agent.renewer.consecutiveFailures, 2);
    assert.equal(timers.length, 1);
  });
});
