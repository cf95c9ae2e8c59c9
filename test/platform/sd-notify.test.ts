// notifySystemd against the real systemd-notify, received the way PID 1 receives it (see
// test/support/notify-receiver.ts).
import { strict as assert } from "node:assert";
import { chmodSync, writeFileSync } from "node:fs";
import path from "node:path";
import { notifyArgs, notifySystemd, sanitizeStatus } from "../../src/platform/sd-notify.js";
import { requireTool, tempDir } from "../support/helpers.js";
import { startReceiver, until, type Receiver } from "../support/notify-receiver.js";

describe("sd-notify", () => {
  it("does nothing without NOTIFY_SOCKET (not started by systemd)", async () => {
    const env = { ...process.env };
    delete env.NOTIFY_SOCKET;
    const r = await notifySystemd({ ready: true, status: "x" }, { env, command: "/nonexistent/systemd-notify" });
    assert.equal(r.outcome, "skipped");
    assert.match(r.detail!, /NOTIFY_SOCKET/);
  });

  it("builds the arguments: --ready, one-line --status, STOPPING=1", () => {
    assert.deepEqual(notifyArgs({ ready: true, status: "client certificate valid" }), ["--ready", "--status=client certificate valid"]);
    assert.deepEqual(notifyArgs({ stopping: true }), ["STOPPING=1"]);
    assert.deepEqual(notifyArgs({}), []);
    assert.equal(sanitizeStatus("a\nMAINPID=1\r\nb\0c"), "a MAINPID=1 b c");
  });

  describe("with the real systemd-notify", function () {
    let rx: Receiver | undefined;
    beforeEach(function () {
      requireTool(this, "systemd-notify");
      requireTool(this, "python3");
    });
    afterEach(() => rx?.stop());

    it("sends READY=1 and STATUS= to $NOTIFY_SOCKET and waits for PID 1 to process it (barrier)", async () => {
      rx = await startReceiver();
      const r = await notifySystemd({ ready: true, status: "client certificate valid until 2027-01-01" }, { env: { ...process.env, NOTIFY_SOCKET: rx.socket } });
      assert.equal(r.outcome, "sent", r.detail);
      await until(() => rx!.assignments().includes("BARRIER=1"));
      const vars = rx.assignments();
      assert.ok(vars.includes("READY=1"), `got ${JSON.stringify(vars)}`);
      assert.ok(vars.includes("STATUS=client certificate valid until 2027-01-01"), `got ${JSON.stringify(vars)}`);
      // READY=1 arrives before the barrier that confirms it was read.
      assert.ok(vars.indexOf("READY=1") < vars.indexOf("BARRIER=1"));
      assert.equal(rx.datagrams.find((d) => d.message.includes("BARRIER=1"))!.fds, 1, "the barrier carries the fd PID 1 closes");
    });

    it("cannot be made to send other variables through the status text", async () => {
      rx = await startReceiver();
      const r = await notifySystemd({ status: "renewal failed\nMAINPID=1\nREADY=1" }, { env: { ...process.env, NOTIFY_SOCKET: rx.socket } });
      assert.equal(r.outcome, "sent", r.detail);
      await until(() => rx!.assignments().includes("BARRIER=1"));
      const vars = rx.assignments();
      assert.ok(vars.includes("STATUS=renewal failed MAINPID=1 READY=1"), `got ${JSON.stringify(vars)}`);
      assert.ok(!vars.includes("READY=1") && !vars.includes("MAINPID=1"), `got ${JSON.stringify(vars)}`);
    });

    it("sends STOPPING=1", async () => {
      rx = await startReceiver();
      const r = await notifySystemd({ stopping: true, status: "shutting down" }, { env: { ...process.env, NOTIFY_SOCKET: rx.socket } });
      assert.equal(r.outcome, "sent", r.detail);
      await until(() => rx!.assignments().includes("BARRIER=1"));
      assert.ok(rx.assignments().includes("STOPPING=1"));
    });

    it("reports (never throws) when nobody listens on the socket", async () => {
      const r = await notifySystemd({ ready: true }, { env: { ...process.env, NOTIFY_SOCKET: path.join(tempDir(), "nobody.sock") } });
      assert.equal(r.outcome, "failed");
      assert.match(r.detail!, /systemd-notify exited/);
    });
  });

  it("reports (never throws) a missing systemd-notify", async () => {
    const r = await notifySystemd({ ready: true }, { env: { ...process.env, NOTIFY_SOCKET: "/run/x.sock" }, command: "/nonexistent/systemd-notify" });
    assert.deepEqual(r, { outcome: "failed", detail: "/nonexistent/systemd-notify is not installed" });
  });

  it("kills a systemd-notify that hangs after the timeout", async () => {
    const hang = path.join(tempDir(), "hang");
    writeFileSync(hang, "#!/bin/sh\nexec sleep 30\n");
    chmodSync(hang, 0o755);
    const started = Date.now();
    const r = await notifySystemd({ ready: true }, { env: { ...process.env, NOTIFY_SOCKET: "/run/x.sock" }, command: hang, timeoutMs: 300 });
    assert.equal(r.outcome, "failed");
    assert.match(r.detail!, /timed out after 300 ms/);
    assert.ok(Date.now() - started < 5000);
  });
});
