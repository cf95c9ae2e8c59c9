// The channel transport's reconnect backoff runs on the injected clock: with no server known yet
// it tries again after full-jitter delays that double up to the cap, as the fake clock advances.
import { strict as assert } from "node:assert";
import path from "node:path";
import { Channel } from "../../../src/agent/channel/transport.js";
import { nodeLayout } from "../../../src/agent/layout.js";
import { NodeStore } from "../../../src/agent/node-store.js";
import type { Renewer } from "../../../src/agent/renewer.js";
import { fakeClock } from "../../support/fake-clock.js";
import { quietLogger, tempDir } from "../../support/helpers.js";

describe("agent/channel/transport: reconnects on the injected clock", () => {
  it("retries at floor(r · min(cap, initial · 2^n)) on the fake clock; stop() cancels the pending retry", async () => {
    const clock = fakeClock();
    const store = new NodeStore(nodeLayout(path.join(tempDir(), "root")), { what: "test" });
    const asked: number[] = [];
    const t0 = clock().getTime();
    const ch = new Channel({
      store,
      logger: quietLogger(),
      clock,
      random: () => 0.5,
      serverUrl: async () => (asked.push(clock().getTime() - t0), undefined),
      renewer: {} as Renewer,
      identity: async () => ({ nodeName: "n1", facts: {} as never, servingSans: [] }),
      options: { heartbeatMs: 30_000, reconnectInitialMs: 1000, reconnectMaxMs: 4000 },
    });
    // Each attempt reads the node's files (real I/O) before it schedules the next one.
    const scheduled = async () => {
      // Bounded by wall time only as a safety net (a loaded machine is slow to finish the reads).
      for (const until = Date.now() + 10_000; clock.pending() === 0 && Date.now() < until; ) await new Promise((r) => setImmediate(r));
      assert.equal(clock.pending(), 1, "a retry was scheduled on the fake clock");
    };
    ch.start();
    await scheduled();
    assert.deepEqual(asked, [0], "the first attempt runs at once");
    while (clock().getTime() - t0 < 9500) {
      await clock.advance(clock.nextIn()!);
      await scheduled();
    }
    // Delays 500, 1000, 2000, 2000, 2000... (half of 1000·2^n capped at 4000).
    assert.deepEqual(asked, [0, 500, 1500, 3500, 5500, 7500, 9500]);
    assert.equal(clock.pending(), 1, "one retry pending");
    await ch.stop();
    assert.equal(clock.pending(), 0, "stop() cancelled it");
    await clock.advance(10_000);
    assert.equal(asked.length, 7);
  });
});
