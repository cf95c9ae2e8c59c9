// Against a real OpenSSL FIPS provider built from Debian's openssl source (scripts/fips-provider.sh):
// a process switched to FIPS passes the self-test and loses MD5; server and agent run with
// fips: on and join and renew; a missing, tampered or unloadable provider refuses to start.
import { strict as assert } from "node:assert";
import { chmodSync, copyFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { nodeLayout } from "../../src/agent/layout.js";
import { certificateInfo } from "../../src/pki/certificate-info.js";
import { ENV_SYSTEM_DIRS } from "../../src/crypto/detect.js";
import { ROOT, freePort, nodecert, requireTool, run, tempDir, type RunResult } from "../support/helpers.js";
import { requestJson } from "../../src/platform/https-client.js";
import { PROTOCOL_VERSION } from "../../src/protocol/messages.js";
import { generateKeyPair } from "../../src/pki/keys.js";
import { createNodeCsr } from "../../src/pki/csr.js";
import { alive, fipsModuleCnf, Proc, requireFipsProvider, until } from "./fips-support.js";

const PROBE = path.join(ROOT, "test/crypto/fixtures/fips-probe.ts");
const TSX = path.join(ROOT, "node_modules/tsx/dist/esm/index.mjs");

function probe(args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return run(process.execPath, ["--import", TSX, PROBE, ...args], { env, timeoutMs: 60_000 });
}

const logLine = (out: string, message: string): Record<string, unknown> => {
  const line = out.split("\n").find((l) => l.includes(`"message":"${message}"`));
  assert.ok(line, `no "${message}" log line in:\n${out}`);
  return JSON.parse(line) as Record<string, unknown>;
};

describe("crypto: a real FIPS provider (built from Debian's openssl source)", function () {
  this.timeout(120_000);
  let providerDir: string;
  /** Nothing but the configured provider can be found: no OPENSSL_MODULES, no system dirs. */
  let isolated: NodeJS.ProcessEnv;
  const procs: Proc[] = [];

  before(async function () {
    this.timeout(20 * 60_000);
    providerDir = await requireFipsProvider(this);
    isolated = { OPENSSL_MODULES: tempDir(), [ENV_SYSTEM_DIRS]: tempDir() };
  });
  after(() => procs.forEach((p) => p.stop()));

  it("scripts/fips-provider.sh reuses a cache that verifies, and prints its directory last", async () => {
    const r = await run("bash", [path.join(ROOT, "scripts/fips-provider.sh")], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim().split("\n").pop(), providerDir);
    assert.match(r.stderr, new RegExp(`reusing the FIPS provider in ${providerDir}`));
    assert.match(readFileSync(path.join(providerDir, "build-seconds"), "utf8"), /^\d+\n$/);
    const bad = await run("bash", [path.join(ROOT, "scripts/fips-provider.sh")], { env: { NODECERT_FIPS_CACHE: "/proc/nodecert-cannot-exist" }, timeoutMs: 120_000 });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /fips-provider: error: cannot create the cache directory \/proc\/nodecert-cannot-exist/);
  });

  it("a process switched with fips: on re-executes once, passes the self-test, and loses MD5 and ChaCha20; Ed25519 is refused", async () => {
    const r = await probe(["on", providerDir], isolated);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split("\n").pop()!);
    assert.notEqual(out.ppid, process.pid, "the work ran in a re-executed child, not the process mocha started");
    assert.equal(out.childMarkerLeft, false, "the re-exec guard is not passed on to our own subprocesses");
    assert.equal(out.opensslConfEnv, null, "the operator's OPENSSL_CONF (unset) is restored for subprocesses");
    assert.equal(out.getFips, 1);
    assert.equal(out.report.fips, true);
    assert.equal(out.report.mode, "on");
    assert.equal(out.report.provider.name, "OpenSSL FIPS Provider");
    assert.match(out.report.provider.version, /^3\.0\.\d+/);
    assert.equal(out.report.provider.module, path.join(providerDir, "fips.so"));
    assert.equal(out.report.selfTest.ok, true);
    assert.deepEqual(
      out.report.selfTest.checks.map((c: { name: string; ok: boolean }) => [c.name, c.ok]),
      [
        ["fips-flag", true],
        ["sha256", true],
        ["ecdsa-p256", true],
        ["md5-refused", true],
      ],
    );
    assert.equal(out.md5.ok, false, "MD5 is unavailable inside the FIPS process");
    assert.match(out.md5.error, /unsupported/);
    assert.equal(out.sha256.ok, true);
    assert.equal(out.chacha20.ok, false, "ChaCha20-Poly1305 is not a FIPS cipher");
    assert.equal(out.ed25519Policy.ok, false);
    assert.match(out.ed25519Policy.error, /FIPS mode: Ed25519 \(EdDSA\) is not an approved signature algorithm/);
    for (const alg of ["ECDSA-P256", "ECDSA-P384", "RSA-2048"]) assert.deepEqual(out.csr[alg], { ok: true }, `${alg} CSR through @peculiar/x509 on the FIPS WebCrypto`);
    // For the record: the 3.0 provider itself still computes Ed25519; the refusal is nodecert's policy.
    console.log(`      (Ed25519 key generation by the OpenSSL ${out.report.provider.version} FIPS provider itself: ${out.ed25519Provider.ok ? "possible, refused by policy" : "fails"})`);
  });

  it("auto with a configured provider dir switches too (--enable-fips); off stays on the default provider", async () => {
    const auto = await probe(["auto", providerDir], isolated);
    assert.equal(auto.code, 0, auto.stderr);
    const a = JSON.parse(auto.stdout.trim());
    assert.equal(a.report.fips, true);
    assert.match(a.report.reason, /fips: auto and fipsProviderDir is set/);
    assert.equal(a.md5.ok, false);
    const off = await probe(["off", providerDir], isolated);
    const o = JSON.parse(off.stdout.trim());
    assert.equal(o.ppid, process.pid, "off does not re-execute");
    assert.equal(o.report.fips, false);
    assert.equal(o.md5.ok, true);
  });

  it("fips: on with a tampered fipsmodule.cnf copy exits non-zero, naming the file and what failed", async () => {
    const copy = tempDir();
    copyFileSync(path.join(providerDir, "fips.so"), path.join(copy, "fips.so"));
    const cnf = readFileSync(path.join(providerDir, "fipsmodule.cnf"), "utf8");
    writeFileSync(path.join(copy, "fipsmodule.cnf"), cnf.replace(/module-mac = (.)/, (_m, c: string) => `module-mac = ${c === "0" ? "1" : "0"}`));
    const r = await probe(["on", copy], isolated);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /fips: on: the FIPS provider is required, but no usable OpenSSL FIPS provider was found/);
    assert.match(r.stderr, new RegExp(`- ${copy} \\(configured fipsProviderDir\\): integrity check failed: module-mac in ${copy}/fipsmodule.cnf does not match ${copy}/fips.so`));

    // The same through the CLI, with the provider dir from agent.yaml.
    const cfg = path.join(tempDir(), "agent.yaml");
    writeFileSync(cfg, YAML.stringify({ root: tempDir(), healthListen: "127.0.0.1:0", hooks: [], fips: "on", fipsProviderDir: copy }));
    const agent = await nodecert(["agent", "--config", cfg], { env: isolated });
    assert.notEqual(agent.code, 0);
    assert.match(agent.stderr, /integrity check failed: module-mac/);
    assert.doesNotMatch(agent.stdout, /agent started/);
  });

  it("fips: on with no provider anywhere exits non-zero and lists where it looked", async () => {
    const r = await probe(["on"], isolated);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, new RegExp(`- ${isolated.OPENSSL_MODULES} \\(OPENSSL_MODULES\\): no fips\\.so`));
    assert.match(r.stderr, /Point fipsProviderDir at a directory holding both/);
  });

  it("a provider that passes the MAC check but cannot be loaded makes the re-executed process fail with a message", async () => {
    const dir = tempDir();
    // A fipsmodule.cnf that truly belongs to the file, but the file is no shared object.
    const junk = Buffer.from("not an ELF shared object\n".repeat(100));
    writeFileSync(path.join(dir, "fips.so"), junk);
    writeFileSync(path.join(dir, "fipsmodule.cnf"), fipsModuleCnf(junk));
    const r = await probe(["on", dir], isolated);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, new RegExp(`error: the FIPS-mode process exited \\(code \\d+\\) before its self-test passed: Node.js could not run on the FIPS provider ${dir}/fips.so`));
    assert.equal(r.stdout, "", "no work was done");
  });

  describe("server and agent with fips: on", () => {
    let serverDir: string;
    let url: string;
    let pin: string;
    let server: Proc;

    before(async () => {
      const port = await freePort();
      serverDir = path.join(tempDir(), "server");
      const init = await nodecert(["server", "init", "--dir", serverDir, "--listen", `127.0.0.1:${port}`, "--san", "127.0.0.1", "--san", "localhost", "--allow-loopback-sans"]);
      assert.equal(init.code, 0, init.stderr);
      pin = /CA pin: (sha256:[0-9a-f]+)/.exec(init.stdout)![1];
      // The provider dir comes from server.yaml, the mode from the flag; only FIPS agents may join.
      writeFileSync(path.join(serverDir, "server.yaml"), readFileSync(path.join(serverDir, "server.yaml"), "utf8") + `fipsProviderDir: ${providerDir}\nrequireFipsNodes: true\n`);
      server = new Proc(["server", "run", "--dir", serverDir, "--fips", "on"], isolated);
      procs.push(server);
      const m = await server.waitFor(/"listen":"127\.0\.0\.1:(\d+)","message":"control plane listening"/);
      url = `https://127.0.0.1:${m[1]}`;
    });

    it("the server runs on the FIPS provider, logs its crypto report, and offers only the FIPS TLS 1.3 suites", async function () {
      const crypto = logLine(server.out, "crypto provider");
      assert.equal(crypto.fips, true);
      assert.equal(crypto.fipsMode, "on");
      assert.equal(crypto.provider, "OpenSSL FIPS Provider");
      assert.equal(crypto.providerModule, path.join(providerDir, "fips.so"));
      assert.match(String(crypto.selfTest), /^passed \(fips-flag, sha256, ecdsa-p256, md5-refused\)$/);
      assert.equal(server.childPids().length, 1, "the relay runs exactly one re-executed child");
      requireTool(this, "openssl");
      const sClient = (suite: string) => run("openssl", ["s_client", "-connect", url.replace("https://", ""), "-tls1_3", "-ciphersuites", suite, "-CAfile", path.join(serverDir, "ca", "bundle.crt")], { input: "", timeoutMs: 20_000 });
      const aes = await sClient("TLS_AES_256_GCM_SHA384");
      assert.match(aes.stdout, /Cipher is TLS_AES_256_GCM_SHA384/);
      const chacha = await sClient("TLS_CHACHA20_POLY1305_SHA256");
      assert.doesNotMatch(chacha.stdout, /Cipher is TLS_CHACHA20/);
      assert.match(chacha.stdout + chacha.stderr, /handshake failure|no shared cipher|alert/i);
    });

    it("nodecert join --fips on succeeds against the FIPS server; a join on the default provider is refused (requireFipsNodes)", async () => {
      const token = await nodecert(["token", "create", "--dir", serverDir, "--server", url, "--uses", "2"]);
      assert.equal(token.code, 0, token.stderr);
      const args = (root: string) => ["join", "--server", url, "--token", token.stdout.trim(), "--ca-cert-hash", pin, "--root", root, "--node-name", "plain-1", "--address", "127.0.0.1"];
      const plainRoot = path.join(tempDir(), "node");
      const plain = await nodecert([...args(plainRoot), "--fips", "off"], { env: isolated });
      assert.notEqual(plain.code, 0);
      assert.match(plain.stderr, /HTTP 403 denied \(rule fips-node\): this server requires FIPS nodes/);
      assert.ok(!existsSync(nodeLayout(plainRoot).current("client")), "nothing installed");

      const root = path.join(tempDir(), "node");
      const r = await nodecert([...args(root), "--fips", "on", "--fips-provider-dir", providerDir], { env: isolated });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.ok(existsSync(nodeLayout(root).current("client")));
      const st = await nodecert(["status", "--root", root]);
      assert.match(st.stdout, /CRYPTO PROVIDER {2}OpenSSL FIPS Provider 3\.0\.\d+/);
      assert.match(st.stdout, /FIPS MODE {8}yes \(fips: on;/);
      assert.match(st.stdout, /SELF-TEST {8}passed \(fips-flag, sha256, ecdsa-p256, md5-refused\)/);
    });

    it("the FIPS server denies CSRs with non-approved algorithms (Ed25519 key, SHA-1 signature by the openssl CLI) with rule fips-algorithms", async function () {
      requireTool(this, "openssl");
      const bundle = readFileSync(path.join(serverDir, "ca", "bundle.crt"), "utf8");
      // An agent that claims FIPS (so fips-node passes) but sends what a FIPS server must refuse.
      const facts = { hostname: "rogue-1", addresses: ["127.0.0.1"], agentVersion: "test", crypto: { provider: "claims FIPS", fips: true, selfTest: "passed" as const } };
      const post = async (client: string, serving: string) => {
        const token = await nodecert(["token", "create", "--dir", serverDir, "--server", url]);
        return requestJson(`${url}/v1/join`, { body: { v: PROTOCOL_VERSION, nodeName: "rogue-1", facts, csrs: { client, serving } }, headers: { authorization: `Bearer ${token.stdout.trim()}` }, tls: { ca: bundle } });
      };
      const ed = await generateKeyPair("Ed25519");
      const edRes = await post(await createNodeCsr({ kind: "client", nodeName: "rogue-1", keys: ed }), await createNodeCsr({ kind: "serving", nodeName: "rogue-1", keys: ed, sans: ["rogue-1", "127.0.0.1"] }));
      assert.equal(edRes.status, 403, JSON.stringify(edRes.body));
      assert.deepEqual((edRes.body as { rule: string }).rule, "fips-algorithms");
      assert.match((edRes.body as { reason: string }).reason, /the client CSR's key is Ed25519: FIPS mode: Ed25519 \(EdDSA\) is not an approved signature algorithm/);

      const sha1 = await run("openssl", ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "/dev/null", "-sha1", "-subj", "/O=system:nodes/CN=system:node:rogue-1"]);
      assert.equal(sha1.code, 0, sha1.stderr);
      const p256 = await generateKeyPair("ECDSA-P256");
      const shaRes = await post(sha1.stdout, await createNodeCsr({ kind: "serving", nodeName: "rogue-1", keys: p256, sans: ["rogue-1", "127.0.0.1"] }));
      assert.equal(shaRes.status, 403, JSON.stringify(shaRes.body));
      assert.equal((shaRes.body as { rule: string }).rule, "fips-algorithms");
      assert.match((shaRes.body as { reason: string }).reason, /signed with ECDSA\/SHA-1: FIPS mode: signatures with SHA-1 are not allowed/);
      const nodes = await nodecert(["nodes", "--dir", serverDir, "--server", url, "-o", "json"]);
      assert.ok(!(JSON.parse(nodes.stdout).nodes as { name: string }[]).some((n) => n.name === "rogue-1"), "nothing was stored for the refused node");
    });

    it("a nodecert agent with fips: on joins by itself, renews through its control socket, and reports FIPS over the channel", async () => {
      const token = await nodecert(["token", "create", "--dir", serverDir, "--server", url, "--node", "fips-1"]);
      assert.equal(token.code, 0, token.stderr);
      const root = path.join(tempDir(), "node");
      const tokenFile = path.join(tempDir(), "token");
      writeFileSync(tokenFile, token.stdout.trim() + "\n");
      chmodSync(tokenFile, 0o600);
      const cfg = path.join(tempDir(), "agent.yaml");
      writeFileSync(cfg, YAML.stringify({ root, server: url, caCertHash: pin, tokenFile, nodeName: "fips-1", keyAlgorithm: "ECDSA-P384", addresses: { only: ["127.0.0.1"] }, healthListen: "127.0.0.1:0", hooks: [], fips: "on", fipsProviderDir: providerDir }));
      const agent = new Proc(["agent", "--config", cfg], isolated);
      procs.push(agent);
      await agent.waitFor(/"message":"joined"/);
      const crypto = logLine(agent.out, "crypto provider");
      assert.equal(crypto.fips, true);
      assert.match(String(crypto.reason), /fips: on: the FIPS provider is required: running on OpenSSL FIPS Provider/);
      const layout = nodeLayout(root);
      const before = certificateInfo(readFileSync(layout.current("client"), "utf8"));
      assert.equal(before.keyAlgorithm, "ECDSA-P384", "the FIPS agent generated the configured key");
      const health = await agent.waitFor(/"message":"health endpoint".*"url":"(http:\/\/127\.0\.0\.1:\d+)\/healthz"/);
      const metrics = await (await fetch(`${health[1]}/metrics`)).text();
      assert.match(metrics, /^nodecert_fips_mode\{provider="OpenSSL FIPS Provider 3\.0\.\d+[^"]*",mode="on"\} 1$/m);
      assert.match(metrics, /^nodecert_crypto_self_test_passed 1$/m);
      const st = await nodecert(["status", "--config", cfg]);
      assert.match(st.stdout, /FIPS MODE {8}yes \(fips: on;/);
      assert.match(st.stdout, /RECORDED {9}\S+ by agent \(pid \d+\)/);

      const renew = await nodecert(["renew", "all", "--force", "--config", cfg]);
      assert.equal(renew.code, 0, renew.stderr);
      assert.doesNotMatch(renew.stderr, /one-shot/, "the FIPS agent did the renewal");
      const serial = certificateInfo(readFileSync(layout.current("client"), "utf8")).serial;
      assert.match(renew.stdout, new RegExp(`renewed client: serial ${serial}`));
      assert.notEqual(serial, before.serial);

      // The WebSocket channel works in FIPS mode and its hello carries the FIPS flag.
      await agent.waitFor(/"message":"channel connected"/);
      const nodes = await nodecert(["nodes", "--dir", serverDir, "--server", url, "-o", "json"]);
      assert.equal(nodes.code, 0, nodes.stderr);
      const view = (JSON.parse(nodes.stdout).nodes as { name: string; connected: boolean; fips?: boolean }[]).find((n) => n.name === "fips-1");
      assert.equal(view?.connected, true, nodes.stdout);
      assert.equal(view?.fips, true, "nodecert nodes shows the agent in FIPS mode");

      // The relay forwards SIGTERM; the agent shuts down cleanly and the relay exits with its code.
      const [childPid] = agent.childPids();
      assert.ok(childPid);
      agent.child.kill("SIGTERM");
      assert.deepEqual(await agent.exited, { code: 0, signal: null });
      assert.match(agent.out, /"message":"shutting down","signal":"SIGTERM"/);
      assert.equal(await until(() => !alive(childPid), 5000), true);
    });

    it("an agent with fips: on refuses Ed25519 keys, with the reason", async () => {
      const cfg = path.join(tempDir(), "agent.yaml");
      writeFileSync(cfg, YAML.stringify({ root: tempDir(), server: url, caCertHash: pin, keyAlgorithm: "Ed25519", healthListen: "127.0.0.1:0", hooks: [], fipsProviderDir: providerDir }));
      const r = await nodecert(["agent", "--config", cfg, "--fips", "on"], { env: isolated });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /keyAlgorithm Ed25519 refused: FIPS mode: Ed25519 \(EdDSA\) is not an approved signature algorithm/);
      assert.doesNotMatch(r.stdout, /agent started/);
    });

    it("the relay forwards SIGHUP (a reload to Ed25519 is refused); if the relay is killed, the FIPS child does not outlive it", async () => {
      const cfg = path.join(tempDir(), "agent.yaml");
      const base = { root: tempDir(), healthListen: "127.0.0.1:0", hooks: [], fips: "on", fipsProviderDir: providerDir };
      writeFileSync(cfg, YAML.stringify(base));
      const agent = new Proc(["agent", "--config", cfg], isolated);
      procs.push(agent);
      await agent.waitFor(/"message":"agent started"/);
      await agent.waitFor(/"message":"health endpoint"/);
      writeFileSync(cfg, YAML.stringify({ ...base, schedule: "*/5 * * * *" }));
      agent.child.kill("SIGHUP");
      await agent.waitFor(/"message":"configuration reloaded".*"schedule":"\*\/5 \* \* \* \*"/);
      writeFileSync(cfg, YAML.stringify({ ...base, keyAlgorithm: "Ed25519" }));
      agent.child.kill("SIGHUP");
      await agent.waitFor(/"error":"keyAlgorithm Ed25519 refused: FIPS mode: Ed25519.*"message":"configuration reload failed; keeping the previous configuration"/);
      const [childPid] = agent.childPids();
      assert.ok(childPid && alive(childPid));
      agent.child.kill("SIGKILL");
      assert.equal(await until(() => !alive(childPid), 10_000), true, "the child noticed its relay is gone and stopped");
    });

    after(async () => {
      if (!server) return;
      server.child.kill("SIGTERM");
      const r = await server.exited;
      assert.deepEqual(r, { code: 0, signal: null }, server.out);
    });
  });
});
