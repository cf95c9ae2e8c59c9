// An agent started on a read-only or a full root stays up, not ready (the reason on /readyz and in
// systemd's STATUS=), keeps the installed pair, probes again with backoff, and recovers by itself
// once the root takes writes. A real tmpfs, remounted read-only or filled to ENOSPC.
import { strict as assert } from "node:assert";
import { closeSync, mkdirSync, openSync, readFileSync, readlinkSync, rmSync, writeSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { spawnSync } from "node:child_process";
import type { Context } from "mocha";
import { runAgent, type RunningAgent } from "../../src/agent/daemon.js";
import { AgentConfig } from "../../src/config/agent.js";
import { nodeIdentity } from "../../src/agent/identity.js";
import { nodeLayout } from "../../src/agent/layout.js";
import { writeFileAtomic } from "../../src/platform/files.js";
import type { NotifyState } from "../../src/platform/sd-notify.js";
import { captureLogger, startServer, tempDir, type TestServer } from "../support/helpers.js";

function unavailable(ctx: Context, why: string): never {
  if (process.env.CI === "true") throw new Error(`${why}: this test needs root and mount(8) (tmpfs) in CI`);
  console.log(`      skipped: ${why}`);
  ctx.skip();
}
const sh = (cmd: string, args: string[]) => {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  return { ok: r.status === 0, out: `${r.stdout ?? ""}${r.stderr ?? ""}` };
};

function fillUp(file: string): void {
  const fd = openSync(file, "w");
  try {
    for (const size of [1 << 16, 4096, 1]) {
      const chunk = Buffer.alloc(size, 0x5a);
      for (;;) {
        try {
          writeSync(fd, chunk);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === "ENOSPC") break;
          throw e;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
}

function readyz(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) =>
    http.get(`http://127.0.0.1:${port}/readyz`, (res) => {
      let d = "";
      res.on("data", (c) => (d += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: d }));
    }).on("error", reject),
  );
}

describe("agent: started on a read-only or full root, it stays up degraded and recovers when writable", function () {
  this.timeout(90_000);
  let server: TestServer;
  const mounts: string[] = [];
  const agents: RunningAgent[] = [];
  before(async () => {
    server = await startServer();
  });
  afterEach(async () => {
    for (const a of agents.splice(0)) await a.close().catch(() => undefined);
    for (const m of mounts.splice(0)) if (!sh("umount", [m]).ok) sh("umount", ["-l", m]);
  });
  after(async () => server?.close());

  async function harness(ctx: Context, name: string) {
    if (process.getuid?.() !== 0) unavailable(ctx, "not running as root, cannot mount");
    const mnt = tempDir("nodecert-degraded-");
    const m = sh("mount", ["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", mnt]);
    if (!m.ok) unavailable(ctx, `mount tmpfs failed: ${m.out}`);
    mounts.push(mnt);
    const root = path.join(mnt, name);
    mkdirSync(root);
    const tokenFile = path.join(tempDir(), "token");
    await writeFileAtomic(tokenFile, (await server.createToken()) + "\n");
    const config = AgentConfig.parse({ root, server: server.url, caCertHash: server.pin, tokenFile, nodeName: name, addresses: { only: ["127.0.0.1"] }, healthListen: "127.0.0.1:0", hooks: [], channel: { enabled: false }, backoff: { initial: "2s", max: "30s" } });
    const timers: { fn: () => void; ms: number }[] = [];
    const statuses: NotifyState[] = [];
    const cap = captureLogger(name);
    const start = () =>
      runAgent({
        config,
        logger: cap.logger,
        random: () => 0.999,
        identity: () => nodeIdentity({ nodeName: name, addresses: { includeLoopback: true, includeLinkLocal: false, extra: [], only: ["127.0.0.1"] }, facts: async () => ({}) }),
        scheduler: () => ({ stop() {}, execute: async () => undefined }),
        setTimer: (fn, ms) => {
          const t = { fn, ms };
          timers.push(t);
          return { cancel: () => void (timers.includes(t) && timers.splice(timers.indexOf(t), 1)) };
        },
        notify: async (s) => (statuses.push(s), { outcome: "sent" as const }),
      }).then((a) => (agents.push(a), a));
    const first = await start();
    await first.joined;
    await first.close();
    agents.splice(agents.indexOf(first), 1);
    timers.splice(0);
    return { mnt, root, layout: nodeLayout(root), start, timers, statuses, lines: cap.lines };
  }

  async function degradedThenRecovered(h: Awaited<ReturnType<typeof harness>>, damage: () => void, repair: () => void, reason: RegExp) {
    const target = readlinkSync(h.layout.current("client"));
    const pair = readFileSync(h.layout.current("client"), "utf8");
    damage();
    const agent = await h.start(); // resolves: no exit at start
    await agent.tick();
    const r = await readyz(agent.healthPort);
    assert.equal(r.status, 503);
    assert.match(r.body, reason);
    assert.match(r.body, /installed certificates stay in use/);
    assert.match(String(h.statuses.at(-1)?.status), new RegExp(`not ready: ${reason.source}`), "systemd's STATUS= says why");
    assert.equal(readlinkSync(h.layout.current("client")), target, "the installed pair stays");
    assert.equal(readFileSync(h.layout.current("client"), "utf8"), pair);
    // Backoff: each failed probe schedules the next one further out (random 0.999 of 2 s, 4 s, 8 s).
    const delays: number[] = [];
    for (let i = 0; i < 3; i++) {
      assert.equal(h.timers.length, 1, "one probe pending");
      const t = h.timers.shift()!;
      delays.push(t.ms);
      t.fn();
      while (!h.timers.length) await new Promise((res) => setTimeout(res, 5));
    }
    assert.deepEqual(delays, [1998, 3996, 7992]);
    assert.equal((await readyz(agent.healthPort)).status, 503);
    repair();
    h.timers.shift()!.fn();
    const end = Date.now() + 20_000;
    while ((await readyz(agent.healthPort)).status !== 200) {
      assert.ok(Date.now() < end, "ready again once the root takes writes");
      await new Promise((res) => setTimeout(res, 20));
    }
    // Renewals work again.
    const out = await agent.renewer.renew(["client"], { force: true });
    assert.equal(out.error, undefined);
    assert.notEqual(readlinkSync(h.layout.current("client")), target);
  }

  it("read-only root: not ready with EROFS named, backoff, recovers after remount rw", async function () {
    const h = await harness(this, "ro-node");
    await degradedThenRecovered(
      h,
      () => assert.ok(sh("mount", ["-o", "remount,ro", h.mnt]).ok),
      () => assert.ok(sh("mount", ["-o", "remount,rw", h.mnt]).ok),
      /degraded: cannot write to .* \(the filesystem is read-only/,
    );
  });

  it("full root: not ready with ENOSPC named, backoff, recovers once space is freed", async function () {
    const h = await harness(this, "full-node");
    const filler = path.join(h.mnt, "filler");
    await degradedThenRecovered(
      h,
      () => fillUp(filler),
      () => rmSync(filler),
      /degraded: cannot write to .* \(the disk is full/,
    );
  });

  it("\"renewed\" is logged only after the install: a renewal whose install fails on a full disk never says it", async function () {
    const h = await harness(this, "log-node");
    const agent = await h.start();
    await agent.tick();
    const filler = path.join(h.mnt, "filler");
    fillUp(filler);
    const before = h.lines.length;
    const out = await agent.renewer.renew(["client", "serving"], { force: true });
    assert.match(out.error ?? "", /ENOSPC/);
    const lines = h.lines.slice(before).map((l) => JSON.parse(l) as { message: string });
    assert.ok(!lines.some((l) => l.message === "renewed"), lines.map((l) => l.message).join("\n"));
    rmSync(filler);
  });
});
