// A campaign attempt cut short by a server crash is refunded on resume: after repeated kills a
// node never reaches more attempts than maxAttempts allows, and still gets all of its real ones.
// Real SQLite file reopened by each "new process"; a hub stand-in that accepts every command.
import { strict as assert } from "node:assert";
import { EventEmitter } from "node:events";
import path from "node:path";
import { Campaigns } from "../../../src/server/fleet/campaigns.js";
import type { Hub } from "../../../src/server/fleet/hub.js";
import { SqliteStore } from "../../../src/server/store/sqlite.js";
import { hashSecret } from "../../../src/server/tokens.js";
import { FakeClock, quietLogger, tempDir } from "../../support/helpers.js";

describe("server/campaigns: attempts interrupted by a crash are refunded", () => {
  it("six crash-and-resume cycles mid-command leave the node at 1 attempt; then 3 real timeouts fail it after exactly maxAttempts 3", async () => {
    const clock = new FakeClock();
    const file = path.join(tempDir(), "s.db");
    const setup = new SqliteStore(file);
    await setup.insertToken({ id: "abcdef", secretHash: hashSecret("x"), usesLeft: 1, expiresAt: new Date(clock.t + 60_000), createdAt: clock.now() });
    await setup.commitJoin({ tokenId: "abcdef", now: clock.now(), node: "n1", facts: { hostname: "n1", addresses: ["10.0.0.1"], agentVersion: "t" }, certificates: [], audit: { time: clock.now(), type: "join.issued" } });
    const sent: string[] = [];
    const hub = () => Object.assign(new EventEmitter(), { connected: () => true, send: () => (sent.push("rotate"), `cmd-${sent.length}`) }) as unknown as Hub;
    const options = { commandTimeoutMs: 1000, maxAttempts: 3, retryBaseMs: 1, retryMaxMs: 1, tickMs: 60_000 };
    const first = new Campaigns({ store: setup, hub: hub(), logger: quietLogger(), clock: clock.now, random: () => 0, options });
    const campaign = await first.start({ nodes: ["n1"], maxInFlight: 1, which: ["client"], reason: "crash test" });
    first.stop();
    let store = setup;
    let campaigns = first;
    for (let crash = 0; crash < 6; crash++) {
      assert.equal((await store.getCampaignNode(campaign.id, "n1"))!.state, "in-flight");
      // kill -9: the process and its command die; a new process opens the same database.
      campaigns.stop();
      store = new SqliteStore(file);
      campaigns = new Campaigns({ store, hub: hub(), logger: quietLogger(), clock: clock.now, random: () => 0, options });
      await campaigns.resume();
      const n = (await store.getCampaignNode(campaign.id, "n1"))!;
      assert.equal(n.state, "in-flight", "re-sent after the restart");
      assert.equal(n.attempts, 1, `after crash ${crash + 1}: the interrupted attempt was refunded`);
    }
    assert.equal(sent.length, 7);
    // Real failures still count: no ack within the timeout, three times, then failed.
    for (let attempt = 1; attempt <= 3; attempt++) {
      clock.advance(1001);
      await campaigns.pump();
      clock.advance(10);
      await campaigns.pump();
    }
    const n = (await store.getCampaignNode(campaign.id, "n1"))!;
    assert.equal(n.state, "failed");
    assert.match(n.lastError ?? "", /after 3 attempts/);
    campaigns.stop();
  });
});
