// The CLI imports only the verb it runs (src/cli/program.ts): proved on the built program by
// recording every module the real process loads (scripts/module-trace.mjs + dist/meta.json).
import { strict as assert } from "node:assert";
import { writeFileSync } from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { BIN, ROOT, nodecert, startServer, tempDir, type TestServer } from "../support/helpers.js";
import { traceModules } from "../support/modules.js";

/** What the verbs an operator's scripts and monitoring call must never load (server/paths.ts only names files: the admin verbs find the admin certificate through it). */
const SERVER_SIDE = [/^src\/server\/(?!paths\.ts$)/, /^node_modules\/fastify\//, /^node_modules\/prom-client\//, /^node_modules\/ws\//, /^src\/agent\/channel\.ts$/, /^src\/agent\/daemon\.ts$/, /^node_modules\/better-sqlite3\//];

function forbidden(sources: string[], patterns: RegExp[]): string[] {
  return sources.filter((s) => patterns.some((p) => p.test(s)));
}

describe("cli: lazy verbs (the built bin/nodecert loads only what the verb uses)", function () {
  this.timeout(120_000);
  let server: TestServer;
  let root: string;
  let config: string;
  before(async () => {
    server = await startServer();
    root = path.join(tempDir(), "node");
    const j = await nodecert(["join", "--server", server.url, "--token", await server.createToken(), "--ca-cert-hash", server.pin, "--root", root, "--node-name", "lazy-1", "--address", "127.0.0.1", "--fips", "off"]);
    assert.equal(j.code, 0, j.stderr);
    config = path.join(tempDir(), "agent.yaml");
    writeFileSync(config, YAML.stringify({ root, server: server.url, caCertHash: server.pin, addresses: { only: ["127.0.0.1"] }, hooks: [], fips: "off" }));
  });
  after(async () => server?.close());

  it("--help loads commander and the command table only: no verb, no server, no TLS or HTTP", async () => {
    const t = await traceModules(BIN, ["--help"]);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /Usage: nodecert/);
    const ours = t.sources.filter((s) => s.startsWith("src/"));
    const allowed = new Set(["src/cli/main.ts", "src/cli/program.ts", "src/cli/env.ts", "src/cli/common.ts", "src/version.ts"]);
    assert.deepEqual(ours.filter((s) => !allowed.has(s)), [], `--help loaded ${ours.join(", ")}`);
    assert.deepEqual(t.sources.filter((s) => s.startsWith("node_modules/") && !s.startsWith("node_modules/commander/")), [], "only commander from node_modules");
    assert.deepEqual(forbidden(t.sources, SERVER_SIDE), []);
    for (const m of ["NativeModule tls", "NativeModule https", "NativeModule http", "NativeModule _http_server"]) assert.ok(!t.internals.includes(m), `--help loaded ${m}`);
  });

  it("status, needs-renewal, token create and renew load no server, fastify, fleet channel or prom-client", async () => {
    const cases: [string, string[], (code: number) => boolean][] = [
      ["status", ["status", "--root", root], (c) => c === 0],
      ["needs-renewal", ["needs-renewal", "--config", config], (c) => c === 1],
      ["token create", ["token", "create", "--dir", server.dir, "--server", server.url], (c) => c === 0],
      ["renew (one-shot, forced)", ["renew", "client", "--force", "--config", config], (c) => c === 0],
    ];
    for (const [name, args, ok] of cases) {
      const t = await traceModules(BIN, args);
      assert.ok(ok(t.code), `${name} exited ${t.code}: ${t.stderr}`);
      assert.deepEqual(forbidden(t.sources, SERVER_SIDE), [], `${name} loaded server-side code`);
    }
  });

  it("dashboard loads its own modules and the admin client only: no server, fastify, fleet channel or SQLite", async () => {
    // Refused after every module of the verb is loaded (their imports are static).
    const t = await traceModules(BIN, ["dashboard", "--dir", server.dir, "--server", server.url, "--listen", "0.0.0.0:0"]);
    assert.equal(t.code, 1, t.stderr);
    assert.match(t.stderr, /loopback only/);
    assert.ok(t.sources.includes("src/cli/dashboard/server.ts"), `traced: ${t.sources.filter((s) => s.startsWith("src/")).join(", ")}`);
    assert.deepEqual(forbidden(t.sources, SERVER_SIDE), [], "dashboard loaded server-side code");
  });

  it("status reads certificates without @peculiar/x509 (Node's own X509Certificate)", async () => {
    const t = await traceModules(BIN, ["status", "--root", root]);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /kubelet-client/);
    assert.deepEqual(t.sources.filter((s) => /@peculiar|reflect-metadata|tsyringe/.test(s)), []);
  });

  it("the wire schemas (src/protocol) load no X.509 library as a side effect", async () => {
    const probe = path.join(tempDir(), "probe.mjs");
    writeFileSync(probe, ["messages", "channel", "admin"].map((m) => `await import(${JSON.stringify(path.join(ROOT, `src/protocol/${m}.ts`))});`).join("\n"));
    const t = await traceModules(process.execPath, ["--import", path.join(ROOT, "node_modules/tsx/dist/esm/index.mjs"), probe]);
    assert.equal(t.code, 0, t.stderr);
    assert.ok(t.sources.includes("src/protocol/channel.ts"), `traced: ${t.sources.filter((s) => s.startsWith("src/")).join(", ")}`);
    assert.deepEqual(t.sources.filter((s) => /@peculiar|reflect-metadata|src\/crypto\/provider\.ts/.test(s)), []);
  });
});
