// What one agent can make the fleet channel do is bounded: a hello flood from a node that stops
// reading is closed by the rate limit (1008) with at most one trust-bundle push queued and the
// server's memory and /healthz unaffected; the same bundle is never pushed twice while a push is
// outstanding; and a peer that does not read is dropped once its send buffer passes the bound.
import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import https from "node:https";
import type WebSocket from "ws";
import { startServer, type TestServer } from "../../support/helpers.js";
import { joinRaw, openChannel, type NodeCredential } from "../../support/node-client.js";
import { serverProcess, type ServerProcess } from "../../support/server-process.js";
import { until } from "../../support/fleet.js";
import { CLOSE_POLICY_VIOLATION } from "../../../src/protocol/channel.js";
import { TokenBucket } from "../../../src/server/fleet/channel-limits.js";

const hello = (i: number) =>
  JSON.stringify({ v: 1, id: `h${i}`, type: "hello", agentVersion: "flood", certificates: [], crypto: { provider: "x", fips: false }, addresses: ["127.0.0.1"], trustBundleSha256: "0".repeat(64) });

const rssKiB = (pid: number) => Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]);

function healthzMs(port: number): Promise<{ status: number; ms: number }> {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve) => {
    const req = https.get({ host: "127.0.0.1", port, path: "/healthz", localAddress: "127.0.0.2", rejectUnauthorized: false, minVersion: "TLSv1.3", agent: false, timeout: 10_000 }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve({ status: 0, ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
  });
}

/** Stops reading the socket under a ws client (a peer that does not read). */
const pause = (ws: WebSocket) => (ws as unknown as { _socket: import("node:net").Socket })._socket.pause();
const resume = (ws: WebSocket) => (ws as unknown as { _socket: import("node:net").Socket })._socket.resume();

describe("server/hub: a flooding or non-reading agent costs a bounded amount", function () {
  this.timeout(120_000);

  describe("against `nodecert server run` (its own process, default limits)", () => {
    let server: ServerProcess;
    let cred: NodeCredential;
    const view = () => ({ url: server.url, port: server.port, authority: { trustBundle: server.trustBundle() } });
    before(async () => {
      server = await serverProcess();
      await server.start();
      cred = (await joinRaw(view(), "flood-1", await server.createToken())).credential!;
    });
    after(async () => server?.stop());

    it("20,000 stale hellos from a node that stops reading: closed by the rate limit, ≤ 1 push queued, RSS and /healthz unaffected", async () => {
      const baseline: number[] = [];
      for (let i = 0; i < 5; i++) baseline.push((await healthzMs(server.port)).ms);
      const rssBefore = rssKiB(server.pid());
      const ch = await openChannel(view(), cred);
      assert.equal(ch.status, 101);
      const ws = ch.ws!;
      const received: string[] = [];
      ws.on("message", (d) => received.push(JSON.parse(d.toString()).type));
      const closed = new Promise<number>((r) => ws.once("close", (code) => r(code)));
      pause(ws);
      for (let i = 0; i < 20_000; i++) ws.send(hello(i));
      const during: { status: number; ms: number }[] = [];
      for (let i = 0; i < 10; i++) during.push(await healthzMs(server.port));
      const rssAfter = rssKiB(server.pid());
      resume(ws);
      const code = await closed;
      const pushes = received.filter((t) => t === "trust-bundle").length;
      const max = Math.max(...during.map((d) => d.ms));
      console.log(`      pushes received ${pushes}, server RSS ${(rssBefore / 1024).toFixed(1)} → ${(rssAfter / 1024).toFixed(1)} MiB, /healthz idle max ${Math.max(...baseline).toFixed(0)} ms, during the flood max ${max.toFixed(0)} ms`);
      // 1008 from the rate limit; a peer that keeps sending after the close frame is then dropped, and
      // a reset can overtake the close frame it never read (1006).
      assert.ok(code === CLOSE_POLICY_VIOLATION || code === 1006, `closed with ${code}`);
      assert.ok(pushes <= 1, `${pushes} trust-bundle pushes (the flood used to queue one per hello)`);
      // Without the limits the same flood grew it by 36-37 MiB (20,000 pushes queued); with them
      // 1-8 MiB (scripts/bench-channel-flood.ts). The bound sits between, away from both.
      assert.ok(rssAfter - rssBefore < 16 * 1024, `server RSS grew by ${((rssAfter - rssBefore) / 1024).toFixed(1)} MiB`);
      assert.ok(during.every((d) => d.status === 200), "/healthz answered every probe during the flood");
      // A hang guard, not a benchmark (scripts/bench-channel-flood.ts measures): 20,000 queued pushes took it to 360 ms.
      assert.ok(max < 2000, `/healthz took ${max.toFixed(0)} ms during the flood`);
      // The node itself may come back at once: the limit is per connection.
      const again = await openChannel(view(), cred);
      assert.equal(again.status, 101);
      again.ws!.close();
    });
  });

  describe("in process", () => {
    let server: TestServer;
    let cred: NodeCredential;
    before(async () => {
      server = await startServer({ overrides: { channel: { messageBurst: 100_000, messageRate: 100_000, maxBufferedBytes: 65_536 } } });
      cred = (await joinRaw(server, "hub-lim-1", await server.createToken())).credential!;
    });
    after(async () => server?.close());

    const countSends = (type: string) => {
      const sent: string[] = [];
      const orig = server.hub.send.bind(server.hub);
      server.hub.send = (node, msg) => {
        const id = orig(node, msg);
        if (id && msg.type === type) sent.push(id);
        return id;
      };
      return { sent, restore: () => (server.hub.send = orig) };
    };

    it("2,000 stale hellos while a push is unacknowledged: one push; after the ack, the next stale hello gets the next", async () => {
      const { sent, restore } = countSends("trust-bundle");
      try {
        const ch = await openChannel(server, cred);
        const ws = ch.ws!;
        const got: { id: string; type: string }[] = [];
        ws.on("message", (d) => got.push(JSON.parse(d.toString())));
        for (let i = 0; i < 2000; i++) ws.send(hello(i));
        await until("all hellos recorded", async () => (await server.store.getNode("hub-lim-1"))?.reported?.agentVersion === "flood" && got.length >= 1);
        // Let every hello arrive: a ping is answered after the frames before it.
        await new Promise((r) => (ws.once("pong", r), ws.ping()));
        await new Promise((r) => setTimeout(r, 50));
        assert.equal(sent.length, 1, `${sent.length} pushes for 2,000 hellos`);
        ws.send(JSON.stringify({ v: 1, id: "a1", type: "ack", commandId: got[0].id, result: "ok" }));
        ws.send(hello(2001));
        await until("a second push after the ack", () => sent.length === 2);
        ws.close();
      } finally {
        restore();
      }
    });

    it("a peer that does not read is disconnected once its send buffer exceeds maxBufferedBytes", async () => {
      const ch = await openChannel(server, cred);
      const ws = ch.ws!;
      await until("connected", () => server.hub.connected("hub-lim-1"));
      pause(ws);
      const bundle = `-----BEGIN CERTIFICATE-----\n${"A".repeat(40_000)}\n-----END CERTIFICATE-----\n`;
      let sends = 0;
      while (server.hub.connected("hub-lim-1") && sends < 5000) {
        server.hub.send("hub-lim-1", { type: "trust-bundle", bundle });
        sends++;
        // Let the socket hand what it can to the kernel, as the event loop would between pushes.
        if (sends % 20 === 0) await new Promise((r) => setImmediate(r));
      }
      await until("dropped", () => !server.hub.connected("hub-lim-1"));
      assert.equal(server.hub.violations.get("send-buffer"), 1);
      assert.ok(sends < 5000, `dropped after ${sends} pushes of 40 KB (kernel buffers take the first few MB)`);
      ws.terminate();
    });
  });

  describe("the default limits", () => {
    it("hello and status store writes are bounded by the rate limit: 1,000 hellos make at most a burst of writes, then the channel is closed", async () => {
      const server = await startServer();
      try {
        const cred = (await joinRaw(server, "writes-1", await server.createToken())).credential!;
        let writes = 0;
        const orig = server.store.recordReport.bind(server.store);
        server.store.recordReport = async (...a) => {
          writes++;
          return orig(...a);
        };
        const ch = await openChannel(server, cred);
        const closed = new Promise<number>((r) => ch.ws!.once("close", (c) => r(c)));
        for (let i = 0; i < 1000; i++) ch.ws!.send(hello(i));
        assert.ok([CLOSE_POLICY_VIOLATION, 1006].includes(await closed), "closed (1008, then dropped as it kept sending)");
        assert.ok(writes <= server.config.channel.messageBurst + 5, `${writes} store writes`);
        assert.equal(server.hub.violations.get("rate"), 1);
      } finally {
        await server.close();
      }
    });

    it("the token bucket refills at the rate on the injected clock, up to the burst", () => {
      let t = 0;
      const b = new TokenBucket(2, 3, () => t);
      assert.deepEqual([b.take(), b.take(), b.take(), b.take()], [true, true, true, false]);
      t += 500; // one token back at 2/s
      assert.deepEqual([b.take(), b.take()], [true, false]);
      t += 60_000; // never more than the burst
      assert.deepEqual([b.take(), b.take(), b.take(), b.take()], [true, true, true, false]);
      t -= 10_000; // a clock stepped back refills nothing
      assert.equal(b.take(), false);
    });
  });
});

