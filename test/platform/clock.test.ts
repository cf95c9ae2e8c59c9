import { strict as assert } from "node:assert";
import { systemClock, toClock } from "../../src/platform/clock.js";
import { fakeClock } from "../support/fake-clock.js";

describe("platform: clock", () => {
  it("a plain now() becomes a Clock with real timers, keeping its time", async () => {
    const at = new Date("2026-03-01T00:00:00Z");
    const c = toClock(() => at);
    assert.equal(c().getTime(), at.getTime());
    const fired = await new Promise<boolean>((r) => c.setTimeout(() => r(true), 1));
    assert.ok(fired);
  });

  it("a cancelled real timer never fires", async () => {
    const c = systemClock();
    let fired = 0;
    c.setTimeout(() => fired++, 1).cancel();
    const t = c.setInterval(() => fired++, 1);
    t.cancel();
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(fired, 0);
  });

  it("the fake clock fires timers only when advanced, in order, with their own time as now", async () => {
    const c = fakeClock("2026-01-01T00:00:00Z");
    const seen: string[] = [];
    c.setTimeout(() => seen.push(`b@${c().toISOString()}`), 2000);
    c.setTimeout(() => seen.push(`a@${c().toISOString()}`), 1000);
    const every = c.setInterval(() => seen.push(`i@${c().toISOString()}`), 1500);
    await c.advance(999);
    assert.deepEqual(seen, []);
    await c.advance(2001);
    assert.deepEqual(seen, ["a@2026-01-01T00:00:01.000Z", "i@2026-01-01T00:00:01.500Z", "b@2026-01-01T00:00:02.000Z", "i@2026-01-01T00:00:03.000Z"]);
    every.cancel();
    assert.equal(c.pending(), 0);
    assert.equal(c().toISOString(), "2026-01-01T00:00:03.000Z");
  });

  it("the fake clock lets a timer's async work finish before the next timer fires", async () => {
    const c = fakeClock();
    const seen: string[] = [];
    c.setTimeout(() => void Promise.resolve().then(async () => { await Promise.resolve(); seen.push("async done"); }), 10);
    c.setTimeout(() => seen.push("second"), 20);
    await c.advance(20);
    assert.deepEqual(seen, ["async done", "second"]);
  });
});
