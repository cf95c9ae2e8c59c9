// Campaign retries back off like the agent's reconnects: exponential, capped, with full jitter, so
// nodes that failed together do not all come back in the same tick. Real SQLite store, fake clock,
// and a stand-in for the hub that accepts every command and never acks.
import { strict as assert } from "node:assert";
import { EventEmitter } from "node:events";
import path from "node:path";
import { Campaigns } from "../../../src/server/fleet/campaigns.js";
import type { Hub } from "../../../src/server/fleet/hub.js";
import { SqliteStore } from "../../../src/server/store/sqlite.js";
import { hashSecret } from "../../../src/server/tokens.js";
import { FakeClock, quietLogger, tempDir } from "../../support/helpers.js";
import { fakeClock } from "../../support/fake-clock.js";

describe("server/campaigns: retry backoff", () => {
  it("retry n waits floor(r · min(cap, base · 2^(n-1))) for the injected draw r, never more than the cap", async () => {
    const clock = new FakeClock();
    const store = new SqliteStore(path.join(tempDir(), "s.db"));
    await store.insertToken({ id: "abcdef", secretHash: hashSecret("x"), usesLeft: 1, expiresAt: new Date(clock.t + 60_000), createdAt: clock.now() });
    await store.commitJoin({ tokenId: "abcdef", now: clock.now(), node: "n1", facts: { hostname: "n1", addresses: ["10.0.0.1"], agentVersion: "t" }, certificates: [], audit: { time: clock.now(), type: "join.issued" } });
    const sent: string[] = [];
    const hub = Object.assign(new EventEmitter(), { connected: () => true, send: () => (sent.push("rotate"), `cmd-${sent.length}`) }) as unknown as Hub;
    const draws = [0.999, 0.5, 0.999, 0.25, 0.999, 0.1];
    let next = 0;
    const c = new Campaigns({ store, hub, logger: quietLogger(), clock: clock.now, random: () => draws[next++], options: { commandTimeoutMs: 1000, maxAttempts: 7, retryBaseMs: 100, retryMaxMs: 250, tickMs: 1000 } });
    const campaign = await c.start({ nodes: ["n1"], maxInFlight: 1, which: ["client"], reason: "backoff test" });
    const delays: number[] = [];
    for (let attempt = 1; attempt <= 6; attempt++) {
      assert.equal(sent.length, attempt, `attempt ${attempt} sent`);
      clock.advance(1001); // no ack within the command timeout
      await c.pump();
      const n = (await store.getCampaignNode(campaign.id, "n1"))!;
      assert.equal(n.state, "pending");
      delays.push(n.nextAttemptAt!.getTime() - clock.t);
      clock.advance(delays[delays.length - 1]);
      await c.pump();
    }
    const ceilings = [100, 200, 250, 250, 250, 250];
    assert.deepEqual(delays, ceilings.map((ceil, i) => Math.floor(draws[i] * ceil)));
    assert.ok(delays.every((d, i) => d >= 0 && d <= ceilings[i]));
    c.stop();
    await store.close();
  });

  it("the campaign's own tick runs on the injected clock: retries happen as the fake clock advances, never by wall time", async () => {
    const clock = fakeClock("2026-06-01T00:00:00Z");
    const store = new SqliteStore(path.join(tempDir(), "s.db"));
    await store.insertToken({ id: "abcdef", secretHash: hashSecret("x"), usesLeft: 1, expiresAt: new Date(clock().getTime() + 60_000), createdAt: clock() });
    await store.commitJoin({ tokenId: "abcdef", now: clock(), node: "n1", facts: { hostname: "n1", addresses: ["10.0.0.1"], agentVersion: "t" }, certificates: [], audit: { time: clock(), type: "join.issued" } });
    const sent: string[] = [];
    const hub = Object.assign(new EventEmitter(), { connected: () => true, send: () => (sent.push("rotate"), `cmd-${sent.length}`) }) as unknown as Hub;
    const c = new Campaigns({ store, hub, logger: quietLogger(), clock, random: () => 0.5, options: { commandTimeoutMs: 1000, maxAttempts: 3, retryBaseMs: 100, retryMaxMs: 250, tickMs: 500 } });
    await c.resume(); // starts the tick
    assert.equal(clock.pending(), 1, "one interval, on the fake clock");
    const campaign = await c.start({ nodes: ["n1"], maxInFlight: 1, which: ["client"], reason: "clock test" });
    assert.equal(sent.length, 1);
    await clock.advance(999);
    assert.equal(sent.length, 1, "no retry before the command timeout");
    // Timeout at 1000 ms, then a retry delay of at most 250 ms, seen by the next 500 ms tick.
    await clock.advance(1001);
    assert.equal(sent.length, 2, "the tick retried once the clock passed timeout + backoff");
    await clock.advance(4000);
    assert.equal(sent.length, 3, "maxAttempts bounds the retries");
    const n = (await store.getCampaignNode(campaign.id, "n1"))!;
    assert.equal(n.state, "failed");
    assert.match(n.lastError ?? "", /after 3 attempts/);
    c.stop();
    assert.equal(clock.pending(), 0, "stop() cancels the tick");
    await store.close();
  });
});
