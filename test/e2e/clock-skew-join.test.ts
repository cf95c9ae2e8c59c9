// A node whose clock is off at its first join: libfaketime preloaded directly into the agent's
// process (the shipped bin/nodecert). It says how far off its clock is, sends no CSR, installs
// nothing, spends no token; once the clock is right the same node joins with the same token, with
// no operator in between (bound and unbound tokens, the CLI join and the daemon).
import { strict as assert } from "node:assert";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { spawn } from "node:child_process";
import YAML from "yaml";
import type { Context } from "mocha";
import { nodeLayout } from "../../src/agent/layout.js";
import { BIN, nodecert, startServer, tempDir, type TestServer } from "../support/helpers.js";

function libfaketime(ctx: Context): string {
  const lib = readdirSync("/usr/lib").map((d) => `/usr/lib/${d}/faketime/libfaketime.so.1`).find((f) => existsSync(f));
  if (lib) return lib;
  if (process.env.CI === "true") throw new Error("libfaketime is missing: scripts/test-deps.sh installs Debian's faketime");
  console.log("      skipped: libfaketime (Debian faketime) is not installed");
  ctx.skip();
}

/** libfaketime in the process itself; the monotonic clock stays real so timers keep working. */
const skewed = (lib: string, offset: string) => ({ ...process.env, LD_PRELOAD: lib, FAKETIME: offset, FAKETIME_DONT_FAKE_MONOTONIC: "1" });

const OFFSETS: { offset: string; seconds: number; direction: "behind" | "ahead of" }[] = [
  { offset: "-70m", seconds: 4200, direction: "behind" },
  { offset: "-6m", seconds: 360, direction: "behind" },
  { offset: "+10m", seconds: 600, direction: "ahead of" },
  { offset: "+2y", seconds: 2 * 365 * 86_400, direction: "ahead of" },
];

describe("e2e: a clock-skewed first join (libfaketime) names the skew, installs nothing, and joins once the clock is right", function () {
  this.timeout(180_000);
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(async () => server?.close());

  OFFSETS.forEach(({ offset, seconds, direction }, i) => {
    const bound = i % 2 === 0;
    it(`${offset} with ${bound ? "a bound single-use" : "an unbound"} token: refused before any CSR, then the same token joins`, async function () {
      const lib = libfaketime(this);
      const node = `skew-${i}`;
      const root = path.join(tempDir(), node);
      const tokenFile = path.join(tempDir(), "token");
      const token = await server.createToken(bound ? { node } : {});
      writeFileSync(tokenFile, token + "\n", { mode: 0o600 });
      const args = ["join", "--server", server.url, "--token-file", tokenFile, "--ca-cert-hash", server.pin, "--root", root, "--node-name", node, "--address", "127.0.0.1", "--fips", "off"];
      const first = await nodecert(args, { env: skewed(lib, offset) });
      assert.notEqual(first.code, 0, first.stdout);
      const m = /your clock is (\d+) s .*?(behind|ahead of) the control plane/.exec(first.stderr);
      assert.ok(m, first.stderr);
      assert.ok(Math.abs(Number(m[1]) - seconds) <= 30, `said ${m[1]} s off, libfaketime set ${seconds} s`);
      assert.equal(m[2], direction);
      const layout = nodeLayout(root);
      assert.equal(existsSync(layout.current("client")), false, "nothing installed");
      assert.deepEqual(existsSync(layout.pkiDir) ? readdirSync(layout.pkiDir) : [], [], "no key or certificate file written");
      assert.equal((await server.store.getToken(token.split(".")[0]))!.usesLeft, 1, "the token was not spent");
      assert.equal(await server.store.getNode(node), undefined, "the server recorded no node");
      // The clock is right again: the same token, no operator.
      const second = await nodecert(args);
      assert.equal(second.code, 0, second.stderr);
      assert.ok(existsSync(layout.current("client")));
      assert.equal((await server.store.listCertificates(node)).length, 2);
    });
  });

  it("the daemon with a token file at -70 min keeps retrying with backoff and joins by itself once its clock is right", async function () {
    const lib = libfaketime(this);
    const node = "skew-daemon";
    const root = path.join(tempDir(), node);
    const tokenFile = path.join(tempDir(), "token");
    writeFileSync(tokenFile, (await server.createToken({ node })) + "\n", { mode: 0o600 });
    const config = path.join(tempDir(), "agent.yaml");
    writeFileSync(config, YAML.stringify({ root, server: server.url, caCertHash: server.pin, tokenFile, nodeName: node, addresses: { only: ["127.0.0.1"] }, healthListen: "127.0.0.1:0", hooks: [], fips: "off", channel: { enabled: false }, backoff: { initial: "200ms", max: "1s" } }));
    // libfaketime re-reads this file on every call (FAKETIME_NO_CACHE): fixing the clock is one write.
    const stamp = path.join(tempDir(), "faketime");
    writeFileSync(stamp, "-70m\n");
    const env = { ...process.env, LD_PRELOAD: lib, FAKETIME_TIMESTAMP_FILE: stamp, FAKETIME_NO_CACHE: "1", FAKETIME_DONT_FAKE_MONOTONIC: "1" };
    const child = spawn(BIN, ["agent", "--config", config], { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c) => (out += c));
    child.stderr.on("data", (c) => (out += c));
    try {
      const until = async (what: string, ok: () => boolean | Promise<boolean>) => {
        const end = Date.now() + 60_000;
        while (!(await ok())) {
          if (Date.now() > end || child.exitCode !== null) assert.fail(`${what}; agent output:\n${out}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      };
      await until("the agent names its clock skew", () => /your clock is \d+ s \(70 min\) behind/.test(out));
      await until("a second attempt (backoff retry)", () => (out.match(/your clock is/g) ?? []).length >= 2);
      assert.equal(existsSync(nodeLayout(root).current("client")), false);
      assert.equal(await server.store.getNode(node), undefined);
      const port = Number(/"url":"http:\/\/127\.0\.0\.1:(\d+)\/healthz"/.exec(out)?.[1]);
      const readyz = () => new Promise<number>((res) => http.get(`http://127.0.0.1:${port}/readyz`, (r) => (r.resume(), res(r.statusCode ?? 0))).on("error", () => res(0)));
      assert.equal(await readyz(), 503);
      writeFileSync(stamp, "+0\n");
      await until("joined once the clock is right", () => existsSync(nodeLayout(root).current("client")));
      await until("ready", async () => (await readyz()) === 200);
      assert.equal((await server.store.listCertificates(node)).length, 2);
    } finally {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    }
  });
});
