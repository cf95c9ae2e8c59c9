// The bootstrap token never sits where another local user can read it: --token-file, --token -
// (stdin) and NODECERT_TOKEN keep it out of argv, and a literal --token is warned about and
// scrubbed from the command line. The e2e part polls `ps` as uid 65534 while real joins run.
import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { Readable } from "node:stream";
import { BIN, requireTool, run, startServer, tempDir, type TestServer } from "../support/helpers.js";
import { until } from "../support/fleet.js";
import { requireFipsProvider } from "../crypto/fips-support.js";
import { protectTokenArgument, readBootstrapToken, TOKEN_ENV, TokenSourceError } from "../../src/agent/token-source.js";

const TOKEN = "abcdef.0123456789abcdef";

describe("agent/token-source: where the bootstrap token comes from", () => {
  it("reads --token-file, --token - (stdin) and NODECERT_TOKEN, trimmed", async () => {
    const f = path.join(tempDir(), "token");
    writeFileSync(f, `${TOKEN}\n`, { mode: 0o600 });
    assert.equal(await readBootstrapToken({ tokenFile: f }, { env: {} }), TOKEN);
    assert.equal(await readBootstrapToken({ token: "-" }, { env: {}, stdin: Readable.from([`  ${TOKEN}\n`]) }), TOKEN);
    assert.equal(await readBootstrapToken({}, { env: { [TOKEN_ENV]: TOKEN } }), TOKEN);
  });

  it("refuses no source, two sources, an empty one and an unreadable file, saying how to give it", async () => {
    await assert.rejects(readBootstrapToken({}, { env: {} }), (e: Error) => e instanceof TokenSourceError && /--token-file FILE .*--token - .*NODECERT_TOKEN/.test(e.message));
    await assert.rejects(readBootstrapToken({ token: "-", tokenFile: "/x" }, { env: {} }), /once: --token or --token-file, not both/);
    await assert.rejects(readBootstrapToken({ token: "-" }, { env: {}, stdin: Readable.from(["\n"]) }), /from stdin is empty/);
    await assert.rejects(readBootstrapToken({ tokenFile: "/nonexistent/token" }, { env: {} }), /cannot read the bootstrap token from \/nonexistent\/token: ENOENT/);
  });

  it("a literal --token is warned about, moved into the environment and removed from argv and the process title", async () => {
    const argv = ["node", "main.ts", "join", "--server", "https://x", "--token", TOKEN, "--ca-cert-hash", "sha256:00"];
    const env: NodeJS.ProcessEnv = {};
    const warnings: string[] = [];
    let title = "";
    const o = { token: TOKEN as string | undefined };
    protectTokenArgument(o, { argv, env, warn: (m) => warnings.push(m), setTitle: (t) => (title = t) });
    assert.deepEqual(argv, ["node", "main.ts", "join", "--server", "https://x", "--ca-cert-hash", "sha256:00"]);
    assert.equal(title, "nodecert join --server https://x --ca-cert-hash sha256:00");
    assert.equal(env[TOKEN_ENV], TOKEN);
    assert.equal(o.token, undefined);
    assert.equal(warnings.length, 1);
    assert.equal(await readBootstrapToken(o, { env }), TOKEN, "still usable, from the environment (also by a FIPS re-exec)");
    const eq = ["node", "main.ts", "join", `--token=${TOKEN}`];
    protectTokenArgument({ token: TOKEN }, { argv: eq, env: {}, warn: () => undefined, setTitle: () => undefined });
    assert.deepEqual(eq, ["node", "main.ts", "join"]);
    const stdinArgv = ["node", "main.ts", "join", "--token", "-"];
    protectTokenArgument({ token: "-" }, { argv: stdinArgv, env: {}, warn: () => assert.fail("no warning for stdin"), setTitle: () => assert.fail("nothing to scrub") });
  });
});

describe("e2e: another uid polling ps never sees the bootstrap token", function () {
  this.timeout(120_000);
  let server: TestServer;
  before(async function () {
    requireTool(this, "setpriv");
    requireTool(this, "ps");
    server = await startServer();
  });
  after(async () => server?.close());

  /** Every command line and (where readable) environment `ps` shows to uid 65534. */
  const psAsNobody = async () => (await run("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "ps", "axeww", "-o", "args"])).stdout;

  /** Runs `nodecert join ...` while polling ps as another user; returns what was seen. */
  async function joinWatched(args: string[], o: { env?: NodeJS.ProcessEnv; input?: string; stopWhen?: (ps: string) => boolean } = {}) {
    const root = path.join(tempDir(), "node");
    const child = spawn(BIN, ["join", "--server", server.url, "--ca-cert-hash", server.pin, "--root", root, "--address", "127.0.0.1", ...args], { env: { ...process.env, ...(o.env ?? {}) }, stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    child.stdin.end(o.input ?? "");
    let done = false;
    const exit = new Promise<number>((r) => child.once("exit", (c) => ((done = true), r(c ?? 1))));
    const seen: string[] = [];
    while (!done) {
      const ps = await psAsNobody();
      seen.push(ps);
      if (o.stopWhen?.(ps)) child.kill("SIGKILL");
    }
    return { code: await exit, stderr, seen: seen.join("\n"), samples: seen.length, sawJoin: seen.some((p) => / join --server /.test(p)) };
  }

  const secretOf = (token: string) => token.split(".")[1];

  it("join --token-file, --token - and NODECERT_TOKEN: the secret never shows in argv or (readable) environments", async () => {
    const cases: { name: string; args: (t: string) => string[]; env?: (t: string) => NodeJS.ProcessEnv; input?: (t: string) => string }[] = [
      { name: "--token-file", args: (t) => {
          const f = path.join(tempDir(), "token");
          writeFileSync(f, t + "\n", { mode: 0o600 });
          return ["--token-file", f, "--node-name", "tf-1"];
        } },
      { name: "--token -", args: () => ["--token", "-", "--node-name", "ts-1"], input: (t) => t + "\n" },
      { name: TOKEN_ENV, args: () => ["--node-name", "te-1"], env: (t) => ({ [TOKEN_ENV]: t }) },
    ];
    for (const c of cases) {
      const token = await server.createToken();
      const r = await joinWatched(c.args(token), { env: c.env?.(token), input: c.input?.(token) });
      assert.equal(r.code, 0, `${c.name}: ${r.stderr}`);
      assert.ok(r.sawJoin, `${c.name}: ps saw the join running (${r.samples} samples), so the check is not vacuous`);
      assert.ok(!r.seen.includes(secretOf(token)), `${c.name}: the secret appeared in ps`);
      assert.equal((await server.store.getToken(token.split(".")[0]))!.usesLeft, 0, `${c.name}: the token was used`);
    }
  });

  it("a literal --token warns and is scrubbed from the command line while the join runs", async () => {
    // A control plane that accepts and never answers keeps the join running while ps looks.
    const hang = net.createServer(() => undefined);
    await new Promise<void>((r) => hang.listen(0, "127.0.0.1", r));
    const url = `https://127.0.0.1:${(hang.address() as net.AddressInfo).port}`;
    try {
      const token = await server.createToken();
      const root = path.join(tempDir(), "node");
      const child = spawn(BIN, ["join", "--server", url, "--token", token, "--ca-cert-hash", server.pin, "--root", root, "--node-name", "tl-1", "--address", "127.0.0.1"], { stdio: ["ignore", "pipe", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (d) => (stderr += d));
      try {
        // Once its code runs, the process shows the scrubbed title instead of node's argv.
        const line = await until("the scrubbed title in ps", async () => (await psAsNobody()).split("\n").find((l) => l.startsWith("nodecert join ")), 30_000);
        assert.ok(!line.includes(secretOf(token)), `still visible: ${line}`);
        assert.match(line, /--server https:\/\/127\.0\.0\.1:\d+ --ca-cert-hash sha256:/);
        for (let i = 0; i < 5; i++) assert.ok(!(await psAsNobody()).includes(secretOf(token)), "stays scrubbed");
        assert.match(stderr, /--token on the command line can be read by every local user/);
      } finally {
        child.kill("SIGKILL");
      }
    } finally {
      hang.close();
    }
  });

  it("with a FIPS re-exec, the re-executed process does not get the literal token in its argv", async function () {
    const providerDir = await requireFipsProvider(this);
    const hang = net.createServer(() => undefined);
    await new Promise<void>((r) => hang.listen(0, "127.0.0.1", r));
    const url = `https://127.0.0.1:${(hang.address() as net.AddressInfo).port}`;
    try {
      const token = await server.createToken();
      const child = spawn(BIN, ["join", "--server", url, "--token", token, "--ca-cert-hash", server.pin, "--root", path.join(tempDir(), "node"), "--node-name", "tl-2", "--address", "127.0.0.1", "--fips", "on", "--fips-provider-dir", providerDir], { stdio: ["ignore", "pipe", "pipe"] });
      try {
        // Parent (scrubbed title) and the FIPS child (node --force-fips ... join) both running.
        const ps = await until("the FIPS child in ps", async () => {
          const out = await psAsNobody();
          return / --force-fips .* join /.test(out) ? out : undefined;
        }, 60_000);
        assert.ok(!ps.includes(secretOf(token)), "neither process shows the secret");
      } finally {
        // SIGTERM is forwarded to the FIPS child; then make sure both are gone.
        child.kill("SIGTERM");
        const gone = await Promise.race([new Promise((r) => child.once("exit", r)), new Promise((r) => setTimeout(r, 5000))]);
        if (!gone) child.kill("SIGKILL");
        const left = (await run("ps", ["-eo", "pid=,args="])).stdout.split("\n").filter((l) => l.includes("--force-fips") && l.includes(" tl-2 "));
        for (const l of left) process.kill(Number(l.trim().split(/\s+/)[0]), "SIGKILL");
      }
    } finally {
      hang.close();
    }
  });
});
