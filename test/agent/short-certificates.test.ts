import { strict as assert } from "node:assert";
import path from "node:path";
import { runAgent, type RunningAgent } from "../../src/agent/daemon.js";
import { AgentConfig } from "../../src/config/agent.js";
import type { Scheduler } from "../../src/agent/scheduler.js";
import { nodeIdentity, type Identity } from "../../src/agent/identity.js";
import { ISSUER_BACKDATE_MS, lifetimeTooShort, usableStart } from "../../src/agent/deadline.js";
import { scheduleGapMs } from "../../src/agent/schedule-gap.js";
import { BACKDATE_MS } from "../../src/pki/certificate.js";
import { writeFileAtomic } from "../../src/platform/files.js";
import { captureLogger, FakeClock, startServer, tempDir } from "../support/helpers.js";

describe("agent/deadline: short certificates renew once per lifetime, inside 70–90 % of the usable lifetime", function () {
  this.timeout(180_000);
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
  });

  it("the usable lifetime starts after the issuer's backdate (capped by when the node first saw the certificate)", () => {
    assert.equal(ISSUER_BACKDATE_MS, BACKDATE_MS, "the agent's copy of the signer's backdate");
    const nb = new Date(Date.UTC(2026, 0, 1));
    const na = new Date(nb.getTime() + BACKDATE_MS + 30_000);
    assert.equal(usableStart(nb, na, new Date(nb.getTime() + BACKDATE_MS + 10)).getTime(), nb.getTime() + BACKDATE_MS);
    // A certificate that was not backdated, seen at its notBefore.
    assert.equal(usableStart(nb, na, nb).getTime(), nb.getTime());
    // Never past notAfter.
    const tiny = new Date(nb.getTime() + 1000);
    assert.equal(usableStart(nb, tiny, new Date(nb.getTime() + BACKDATE_MS)).getTime(), nb.getTime());
  });

  it("the longest gap of a schedule, from node-cron's parse", () => {
    assert.equal(scheduleGapMs("* * * * *"), 60_000);
    assert.equal(scheduleGapMs("* * * * * *"), 1000);
    assert.equal(scheduleGapMs("*/5 * * * * *"), 5000);
    assert.equal(scheduleGapMs("0,50 * * * *"), 50 * 60_000);
    assert.equal(scheduleGapMs("0 */6 * * *"), 6 * 3_600_000);
    assert.equal(scheduleGapMs("0 3 * * 1"), 7 * 86_400_000);
  });

  it("a lifetime too short for the schedule is named with the fix", () => {
    assert.equal(lifetimeTooShort(30_000, 1000, "* * * * * *"), undefined);
    assert.match(lifetimeTooShort(30_000, 60_000, "* * * * *")!, /lifetime 30s is too short for the schedule "\* \* \* \* \*" \(checks up to 60s apart\): the certificate can expire between two checks; check at least every 6s/);
    assert.match(lifetimeTooShort(120_000, 30_000, "*/30 * * * * *")!, /renewals can land after 90 %/);
  });

  async function run(lifetime: string, lifeMs: number, schedule: string, stepMs: number, spanMs: number, startOffsetMs: number) {
    // The fake clock stays where the short certificates are valid in real time too (TLS checks them).
    const clock = new FakeClock(Date.now() + startOffsetMs);
    const server = await startServer({ clock, overrides: { certificates: { maxClientLifetime: lifetime, maxServingLifetime: lifetime } } });
    closers.push(() => server.close());
    const root = path.join(tempDir(), "node");
    const tokenFile = path.join(tempDir(), "token");
    await writeFileAtomic(tokenFile, (await server.createToken()) + "\n");
    const jobs: (() => Promise<unknown>)[] = [];
    const scheduler: Scheduler = (_e, job) => (jobs.push(job), { stop() {}, execute: job });
    const config = AgentConfig.parse({ root, server: server.url, caCertHash: server.pin, tokenFile, nodeName: "n1", addresses: { only: ["127.0.0.1"] }, healthListen: "127.0.0.1:0", hooks: [], schedule, channel: { enabled: false } });
    const identity = (): Promise<Identity> => nodeIdentity({ nodeName: "n1", addresses: { includeLoopback: true, includeLinkLocal: false, extra: [], only: ["127.0.0.1"] }, facts: async () => ({}) });
    const agent: RunningAgent = await runAgent({ config, logger: captureLogger().logger, clock: clock.now, identity, scheduler, setTimer: () => ({ cancel() {} }) });
    closers.push(() => agent.close());
    await agent.joined;
    const end = clock.t + spanMs;
    while (clock.t < end) {
      clock.advance(stepMs);
      await jobs[0]();
    }
    // Every certificate the node got, in issue order: each one's successor was issued inside 70–90 %
    // of its usable lifetime (plus one check of slack), i.e. exactly one renewal per lifetime.
    const certs = (await server.store.listCertificates("n1")).filter((c) => c.kind === "client").sort((a, b) => a.issuedAt.getTime() - b.issuedAt.getTime());
    const fractions: number[] = [];
    for (let i = 0; i + 1 < certs.length; i++) {
      // X.509 times have whole seconds: notBefore + backdate is the issue time, to the second.
      const start = certs[i].notBefore.getTime() + BACKDATE_MS;
      assert.ok(Math.abs(certs[i].notAfter.getTime() - start - lifeMs) < 1000, "usable lifetime as configured");
      fractions.push((certs[i + 1].issuedAt.getTime() - start) / lifeMs);
    }
    for (const f of fractions) assert.ok(f >= 0.7 && f <= 0.9 + stepMs / lifeMs, `renewed at ${Math.round(f * 1000) / 10} % of the usable lifetime (first ten: ${fractions.slice(0, 10)})`);
    const lifetimes = spanMs / lifeMs;
    assert.ok(fractions.length >= Math.floor(lifetimes) && fractions.length <= Math.ceil(lifetimes / 0.7), `${fractions.length} renewals over ${lifetimes} lifetimes`);
    return agent;
  }

  it("30-s certificates at a 1-s schedule: 8 lifetimes, one renewal each inside the window, no warning", async () => {
    const agent = await run("30s", 30_000, "* * * * * *", 1000, 240_000, -30_000);
    assert.deepEqual(agent.renewer.lastDecisions.map((d) => d.warning), [undefined, undefined]);
  });

  it("2-min certificates at a 5-s schedule: 3 lifetimes, one renewal each inside the window", async () => {
    await run("2m", 120_000, "*/5 * * * * *", 5000, 360_000, -110_000);
  });

  it("30-s certificates at the default one-minute schedule: the decision carries the warning", async () => {
    const agent = await run("30s", 30_000, "* * * * * *", 1000, 1000, -30_000);
    agent.renewer.updateConfig({ ...agent.renewer.config, schedule: "* * * * *" });
    await agent.renewer.evaluate();
    for (const d of agent.renewer.lastDecisions) assert.match(d.warning ?? "", /too short for the schedule "\* \* \* \* \*"/);
  });
});
