// notifySystemd against the real systemd-notify, received the way PID 1 receives it: a python3
// process bound to an AF_UNIX datagram socket named by NOTIFY_SOCKET (Node cannot open one). Like
// PID 1 it closes the file descriptors that come with a message, which releases systemd-notify's
// BARRIER=1 wait.
import { strict as assert } from "node:assert";
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, writeFileSync } from "node:fs";
import path from "node:path";
import { notifyArgs, notifySystemd, sanitizeStatus } from "../../src/agent/sd-notify.js";
import { requireTool, tempDir } from "../support/helpers.js";

const RECEIVER = `
import array, json, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print(json.dumps({"listening": True}), flush=True)
while True:
    msg, anc, flags, addr = s.recvmsg(65536, socket.CMSG_SPACE(64 * 4))
    fds = []
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            a = array.array("i")
            a.frombytes(data[: len(data) - len(data) % a.itemsize])
            fds.extend(a)
    for fd in fds:
        os.close(fd)
    print(json.dumps({"message": msg.decode("utf-8", "replace"), "fds": len(fds)}), flush=True)
`;

interface Datagram {
  message: string;
  fds: number;
}

interface Receiver {
  socket: string;
  datagrams: Datagram[];
  /** Variables of every datagram so far, in order. */
  assignments(): string[];
  stop(): void;
}

async function startReceiver(): Promise<Receiver> {
  const socket = path.join(tempDir("nodecert-notify-"), "notify.sock");
  const child: ChildProcess = spawn("python3", ["-u", "-c", RECEIVER, socket], { stdio: ["ignore", "pipe", "pipe"] });
  const datagrams: Datagram[] = [];
  let err = "";
  child.stderr!.on("data", (d) => (err += d));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`receiver did not start: ${err}`)), 10_000);
    let buf = "";
    child.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = JSON.parse(buf.slice(0, i)) as Datagram & { listening?: boolean };
        buf = buf.slice(i + 1);
        if (line.listening) {
          clearTimeout(timer);
          resolve();
        } else datagrams.push(line);
      }
    });
    child.on("exit", (c) => reject(new Error(`receiver exited ${c}: ${err}`)));
  });
  return {
    socket,
    datagrams,
    assignments: () => datagrams.flatMap((d) => d.message.split("\n").filter(Boolean)),
    stop: () => child.kill("SIGKILL"),
  };
}

/** The receiver prints asynchronously; wait until it has printed what systemd-notify sent. */
async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out waiting for the notification");
    await new Promise((r) => setTimeout(r, 20));
  }
}

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
