// One address cannot take the HTTPS listener away from everyone else: stalled bodies, headers and
// handshakes are closed within the configured timeouts, connections over the per-source cap are
// dropped at once, and /healthz from another address keeps answering, with the server's open files
// limited to 256 by prlimit (the limit the attack exhausted, made small).
import { strict as assert } from "node:assert";
import { EventEmitter } from "node:events";
import { readFileSync } from "node:fs";
import type { Server } from "node:http";
import https from "node:https";
import net from "node:net";
import tls from "node:tls";
import { requireTool } from "../../support/helpers.js";
import { serverProcess, type ServerProcess } from "../../support/server-process.js";
import { until } from "../../support/fleet.js";
import { ConnectionCap } from "../../../src/server/http/limits.js";
import { FailureLimiter } from "../../../src/server/tokens.js";
import { sourceKey } from "../../../src/server/source-key.js";
import { quietLogger } from "../../support/helpers.js";

/** GET /healthz bound to a local source address; the status, or 0 when it failed. */
function healthz(port: number, localAddress: string): Promise<number> {
  return new Promise((resolve) => {
    const req = https.get({ host: "127.0.0.1", port, path: "/healthz", localAddress, rejectUnauthorized: false, minVersion: "TLSv1.3", agent: false, timeout: 5000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(0));
  });
}

interface Held {
  socket: tls.TLSSocket | net.Socket;
  secure: boolean;
  closedAt?: number;
  answer: string;
}

/** Opens a connection from 127.0.0.1 and runs `then` once TLS is up (or right away for raw TCP). */
function hold(port: number, o: { raw?: boolean; then?: (s: tls.TLSSocket) => void }): Promise<Held> {
  return new Promise((resolve) => {
    const h: Held = { socket: undefined as never, secure: false, answer: "" };
    const s = o.raw ? net.connect({ host: "127.0.0.1", port, localAddress: "127.0.0.1" }) : tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false, minVersion: "TLSv1.3" });
    h.socket = s;
    s.on("data", (d) => (h.answer += d));
    s.on("error", () => undefined);
    s.once("close", () => {
      h.closedAt = Date.now();
      resolve(h);
    });
    if (o.raw) s.once("connect", () => resolve(h));
    else
      s.once("secureConnect", () => {
        h.secure = true;
        o.then?.(s as tls.TLSSocket);
        resolve(h);
      });
  });
}

describe("server/http-limits: timeouts and a per-source connection cap", function () {
  this.timeout(120_000);
  let server: ServerProcess;
  const LIMITS = { headersTimeout: "1s", requestTimeout: "3s", idleTimeout: "1s", maxConnectionsPerSource: 64 };
  before(async function () {
    requireTool(this, "prlimit");
    server = await serverProcess({ prlimitNofile: 256, config: { limits: LIMITS, tokens: { maxFailures: 1000, failureWindow: "1m" } } });
    await server.start();
  });
  after(async () => server?.stop());

  it("the server really runs with 256 open files (prlimit)", () => {
    const limits = readFileSync(`/proc/${server.pid()}/limits`, "utf8");
    assert.match(limits, /^Max open files\s+256\s+256\s+files/m);
  });

  it("300 stalled join bodies from one address: 64 held, the rest dropped at once, all closed within requestTimeout, /healthz from another address answers throughout", async () => {
    const token = await server.createToken({ uses: 1000 });
    const head = `POST /v1/join HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${token}\r\ncontent-type: application/json\r\ncontent-length: 50000\r\n\r\n{"v":1`;
    const started = Date.now();
    const held = await Promise.all(Array.from({ length: 300 }, () => hold(server.port, { then: (s) => s.write(head) })));
    const secure = held.filter((h) => h.secure);
    assert.ok(secure.length <= 64, `at most the cap got a TLS session: ${secure.length}`);
    assert.ok(secure.length >= 32, `the cap let connections in: ${secure.length}`);
    const dropped = held.filter((h) => !h.secure);
    assert.ok(dropped.every((h) => h.closedAt !== undefined), "connections over the cap were closed before TLS");
    for (let i = 0; i < 5; i++) assert.equal(await healthz(server.port, "127.0.0.2"), 200, `healthz from 127.0.0.2 while 127.0.0.1 stalls (probe ${i})`);
    // Each stalled body is closed by the server (with a 408 when Node gets to answer first), within the request timeout plus
    // the interval Node checks deadlines on (a quarter of the shortest timeout here).
    await until("every stalled request closed", () => secure.every((h) => h.closedAt !== undefined), 15_000);
    for (const h of secure) {
      assert.ok(h.closedAt! - started < 3000 + 2500, `closed after ${h.closedAt! - started} ms`);
      assert.match(h.answer, /^(HTTP\/1\.1 408 [^]*)?$/, "nothing but a timeout answer");
    }
    // Closed connections no longer count: the source gets its budget back.
    assert.equal(await healthz(server.port, "127.0.0.1"), 200);
  });

  it("stalled headers and a TLS handshake that never starts are closed within headersTimeout", async () => {
    const t0 = Date.now();
    const [headers, handshake] = await Promise.all([hold(server.port, { then: (s) => s.write("GET /healthz HTTP/1.1\r\nhost: x\r\n") }), hold(server.port, { raw: true })]);
    await until("both closed", () => headers.closedAt !== undefined && handshake.closedAt !== undefined, 10_000);
    assert.ok(headers.closedAt! - t0 < 1000 + 1500, `headers: ${headers.closedAt! - t0} ms`);
    assert.ok(handshake.closedAt! - t0 < 1000 + 1500, `handshake: ${handshake.closedAt! - t0} ms`);
  });

  it("an idle keep-alive connection is closed after idleTimeout", async () => {
    const h = await hold(server.port, { then: (s) => s.write("GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n") });
    await until("answered", () => /200 OK/.test(h.answer), 5000);
    const answered = Date.now();
    await until("closed", () => h.closedAt !== undefined, 10_000);
    assert.ok(h.closedAt! - answered < 1000 + 1500, `idle for ${h.closedAt! - answered} ms`);
  });
});

describe("server/source-key: one source per host, not per address string", () => {
  it("IPv4-mapped addresses are their IPv4 address; IPv6 is keyed by its /64 (configurable)", () => {
    assert.equal(sourceKey("::ffff:127.0.0.1"), "127.0.0.1");
    assert.equal(sourceKey("::ffff:7f00:1"), "127.0.0.1");
    assert.equal(sourceKey("127.0.0.1"), "127.0.0.1");
    assert.equal(sourceKey("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
    assert.equal(sourceKey("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
    assert.notEqual(sourceKey("2001:db8:1:3::1"), sourceKey("2001:db8:1:2::1"));
    assert.equal(sourceKey("2001:db8:1:2::1", 128), "2001:db8:1:2::1/128");
    assert.equal(sourceKey("2001:db8:1:2::1", 48), "2001:db8:1::/48");
    assert.equal(sourceKey("fe80::1%eth0"), "fe80::/64");
  });

  it("failed token attempts from 127.0.0.1 and ::ffff:127.0.0.1, or from two addresses of one /64, share one budget", () => {
    const limiter = new FailureLimiter(3, 60_000, () => 0);
    for (const a of ["127.0.0.1", "::ffff:127.0.0.1", "127.0.0.1"]) limiter.fail(sourceKey(a));
    assert.ok(limiter.retryAfter(sourceKey("::ffff:127.0.0.1")) > 0);
    for (const a of ["2001:db8::1", "2001:db8::2", "2001:db8::ffff"]) limiter.fail(sourceKey(a));
    assert.ok(limiter.retryAfter(sourceKey("2001:db8::abcd")) > 0, "the /64 is blocked");
    assert.equal(limiter.retryAfter(sourceKey("2001:db8:0:1::1")), 0, "the next /64 is not");
  });

  it("the connection cap counts mapped and plain IPv4 as one source", () => {
    const cap = new ConnectionCap({ maxConnectionsPerSource: 2, ipv6SourcePrefix: 64 }, quietLogger(), () => 0);
    const fake = new EventEmitter() as unknown as Server;
    cap.attach(fake);
    const socket = (addr: string) => Object.assign(new EventEmitter(), { remoteAddress: addr, destroyed: false, destroy() { this.destroyed = true; } });
    const a = socket("127.0.0.1");
    const b = socket("::ffff:127.0.0.1");
    const c = socket("::ffff:127.0.0.1");
    for (const s of [a, b, c]) fake.emit("connection", s);
    assert.deepEqual([a.destroyed, b.destroyed, c.destroyed], [false, false, true]);
    assert.equal(cap.count("127.0.0.1"), 2);
    a.emit("close");
    assert.equal(cap.count("127.0.0.1"), 1);
    cap.release(b);
    assert.equal(cap.count("127.0.0.1"), 0, "a connection that became a channel no longer counts");
  });
});
