import { strict as assert } from "node:assert";
import { SerialQueue } from "../../src/platform/serial-queue.js";

describe("platform: serial queue", () => {
  it("runs tasks one at a time in the order queued", async () => {
    const q = new SerialQueue();
    const log: string[] = [];
    let running = 0;
    const task = (name: string, ticks: number) => async () => {
      running++;
      assert.equal(running, 1, "two tasks overlapped");
      for (let i = 0; i < ticks; i++) await Promise.resolve();
      log.push(name);
      running--;
      return name;
    };
    const results = await Promise.all([q.run(task("a", 5)), q.run(task("b", 1)), q.run(task("c", 3))]);
    assert.deepEqual(log, ["a", "b", "c"]);
    assert.deepEqual(results, ["a", "b", "c"]);
  });

  it("a failed task rejects only its caller; later tasks still run; onError sees it", async () => {
    const errors: unknown[] = [];
    const q = new SerialQueue((e) => errors.push(e));
    const failed = q.run(async () => {
      throw new Error("boom");
    });
    const next = q.run(async () => "after");
    await assert.rejects(failed, /boom/);
    assert.equal(await next, "after");
    assert.equal((errors[0] as Error).message, "boom");
  });

  it("idle() waits for everything queued so far, busy says whether anything is", async () => {
    const q = new SerialQueue();
    let done = false;
    void q.run(async () => {
      await new Promise((r) => setImmediate(r));
      done = true;
    });
    assert.equal(q.busy, true);
    await q.idle();
    assert.equal(done, true);
    assert.equal(q.busy, false);
  });
});
