// `nodecert server run` under systemd (Type=notify): READY=1 and STATUS= once it listens,
// STOPPING=1 on shutdown. The real binary, the real systemd-notify, and a receiver bound to
// $NOTIFY_SOCKET the way PID 1 is.
import { strict as assert } from "node:assert";
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { requestJson } from "../../src/platform/https-client.js";
import { BIN, nodecert, requireTool, startServer, tempDir } from "../support/helpers.js";
import { startReceiver, until, type Receiver } from "../support/notify-receiver.js";

describe("server run: systemd readiness", function () {
  let rx: Receiver | undefined;
  let child: ChildProcess | undefined;
  beforeEach(function () {
    requireTool(this, "systemd-notify");
    requireTool(this, "python3");
  });
  afterEach(() => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    rx?.stop();
  });

  it("sends READY=1 with 'listening on host:port, N nodes' once it serves, and STOPPING=1 on SIGTERM", async () => {
    // A server that already knows one node.
    const first = await startServer();
    const dir = first.dir;
    const ca = first.authority.trustBundle;
    try {
      const j = await nodecert(["join", "--server", first.url, "--token", await first.createToken(), "--ca-cert-hash", first.pin, "--root", path.join(tempDir(), "node"), "--node-name", "n1", "--address", "127.0.0.1"]);
      assert.equal(j.code, 0, j.stderr);
    } finally {
      await first.close();
    }

    rx = await startReceiver();
    const proc = spawn(BIN, ["server", "run", "--dir", dir, "--listen", "127.0.0.1:0"], { env: { ...process.env, NOTIFY_SOCKET: rx.socket }, stdio: ["ignore", "pipe", "pipe"] });
    child = proc;
    let out = "";
    proc.stdout!.on("data", (d) => (out += d));
    proc.stderr!.on("data", (d) => (out += d));
    const exited = new Promise<number | null>((r) => proc.on("exit", (code) => r(code)));

    await until(() => rx!.assignments().includes("READY=1"), 60_000).catch((e: Error) => {
      throw new Error(`${e.message}; server output:\n${out}`);
    });
    const status = rx.assignments().find((a) => a.startsWith("STATUS="));
    const m = /^STATUS=listening on 127\.0\.0\.1:(\d+), 1 node$/.exec(status ?? "");
    assert.ok(m, `got ${JSON.stringify(rx.assignments())}`);
    // READY=1 came after listen: the port it names answers, over TLS 1.3.
    const health = await requestJson(`https://127.0.0.1:${m[1]}/healthz`, { tls: { ca } });
    assert.equal(health.status, 200);
    await until(() => /reported ready to systemd/.test(out));

    proc.kill("SIGTERM");
    assert.equal(await exited, 0, out);
    const vars = rx.assignments();
    assert.equal(vars.filter((v) => v === "READY=1").length, 1, "READY=1 is sent once");
    assert.ok(vars.includes("STOPPING=1"), `got ${JSON.stringify(vars)}`);
    assert.ok(vars.indexOf("READY=1") < vars.indexOf("STOPPING=1"));
    assert.ok(vars.includes("STATUS=stopping"));
  });

  it("runs without systemd (no NOTIFY_SOCKET) and says nothing about it", async () => {
    const first = await startServer();
    await first.close();
    const env = { ...process.env };
    delete env.NOTIFY_SOCKET;
    const proc = spawn(BIN, ["server", "run", "--dir", first.dir, "--listen", "127.0.0.1:0"], { env, stdio: ["ignore", "pipe", "pipe"] });
    child = proc;
    let out = "";
    proc.stdout!.on("data", (d) => (out += d));
    proc.stderr!.on("data", (d) => (out += d));
    const exited = new Promise<number | null>((r) => proc.on("exit", (code) => r(code)));
    await until(() => /control plane listening/.test(out), 60_000);
    proc.kill("SIGTERM");
    assert.equal(await exited, 0, out);
    assert.doesNotMatch(out, /systemd/);
  });
});
