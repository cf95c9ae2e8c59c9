// The state-directory lock between processes: a live holder makes others wait, then fail with a
// message naming it; a holder killed with SIGKILL never blocks anyone (its pid no longer runs it).
import { strict as assert } from "node:assert";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { LockBusyError, withDirLock } from "../../src/platform/dir-lock.js";
import { ROOT, tempDir } from "../support/helpers.js";

/** A child process that takes the lock and holds it until killed; resolves once it holds it. */
function holder(file: string): Promise<ChildProcess> {
  const script = path.join(tempDir(), "hold.mts");
  writeFileSync(
    script,
    `import { withDirLock } from ${JSON.stringify(path.join(ROOT, "src/platform/dir-lock.ts"))};\n` +
      `await withDirLock(${JSON.stringify(file)}, { what: "test holder", waitMs: 5000 }, async () => { process.stdout.write("held\\n"); await new Promise(() => setInterval(() => {}, 1000)); });\n`,
  );
  const child = spawn(process.execPath, ["--import", "tsx", script], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => d.toString().includes("held") && resolve(child));
    child.once("exit", (code) => reject(new Error(`holder exited ${code}`)));
  });
}

describe("platform: directory lock between processes", function () {
  this.timeout(30_000);

  it("a live holder in another process: the second waits its bound, then fails naming the holder; code 'locked'", async () => {
    const dir = tempDir();
    const file = path.join(dir, ".lock");
    const child = await holder(file);
    try {
      let waitedFor: number | undefined;
      const err = await withDirLock(file, { what: "test", waitMs: 300, onWait: (h) => (waitedFor = h?.pid) }, async () => "got it").catch((e: unknown) => e);
      assert.ok(err instanceof LockBusyError, String(err));
      assert.equal(err.code, "locked");
      assert.equal(err.holder?.pid, child.pid);
      assert.equal(waitedFor, child.pid, "the wait was reported before giving up");
      assert.match(err.message, new RegExp(`locked by another nodecert process \\(pid ${child.pid}, test holder, since `));
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("a holder killed with SIGKILL: the next process takes the lock at once and cleans up", async () => {
    const dir = tempDir();
    const file = path.join(dir, ".lock");
    const child = await holder(file);
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    assert.ok(existsSync(file), "the dead holder's lock file is still there");
    let waited = false;
    const got = await withDirLock(file, { what: "test", waitMs: 0, onWait: () => (waited = true) }, async () => "got it");
    assert.equal(got, "got it");
    assert.equal(waited, false, "a dead holder is not waited for");
    assert.deepEqual(readdirSync(dir), [], "no lock file or temp file left");
  });

  it("within one process: holders queue, and a holder may take it again without deadlock", async () => {
    const file = path.join(tempDir(), ".lock");
    const order: string[] = [];
    const a = withDirLock(file, { what: "a", waitMs: 0 }, async () => {
      order.push("a start");
      await withDirLock(file, { what: "a again", waitMs: 0 }, async () => order.push("a nested"));
      await new Promise((r) => setImmediate(r));
      order.push("a end");
    });
    const b = withDirLock(file, { what: "b", waitMs: 0 }, async () => order.push("b"));
    await Promise.all([a, b]);
    assert.deepEqual(order, ["a start", "a nested", "a end", "b"]);
  });

  it("a lock file that cannot be written (unlockedOn): fn runs without it, and calls nested in it re-enter instead of deadlocking", async () => {
    const dir = tempDir();
    const file = path.join(dir, "missing-subdir", ".lock"); // ENOENT when the lock file is written
    const seen: string[] = [];
    const out = await withDirLock(file, { what: "t", waitMs: 0, unlockedOn: ["ENOENT"], onUnlocked: (e) => seen.push(e.message) }, async () =>
      withDirLock(file, { what: "nested", waitMs: 0, unlockedOn: ["ENOENT"] }, async () => "nested ran"),
    );
    assert.equal(out, "nested ran");
    assert.equal(seen.length, 1);
    assert.match(seen[0]!, /cannot lock .*missing-subdir/);
    await assert.rejects(withDirLock(file, { what: "t", waitMs: 0 }, async () => "never"), /cannot lock/, "without unlockedOn the failure is reported");
  });
});
