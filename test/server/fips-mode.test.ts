// The server's FIPS behaviour that does not need the provider itself: the TLS profile a FIPS
// server offers (checked with openssl s_client), requireFipsNodes over a real join, and what
// `nodecert status` reports about the agent's crypto. The same paths under the real FIPS
// provider are in test/crypto/fips-provider.test.ts.
import { strict as assert } from "node:assert";
import { existsSync } from "node:fs";
import path from "node:path";
import { nodeLayout } from "../../src/agent/layout.js";
import { nodecert, requireTool, run, startServer, tempDir, type TestServer } from "../support/helpers.js";

describe("server: FIPS mode profile and requireFipsNodes", function () {
  const servers: TestServer[] = [];
  after(async () => Promise.all(servers.map((s) => s.close())));

  const sClient = (s: TestServer, suite: string) =>
    run("openssl", ["s_client", "-connect", s.url.replace("https://", ""), "-tls1_3", "-ciphersuites", suite, "-CAfile", path.join(s.dir, "ca", "bundle.crt")], { input: "", timeoutMs: 20_000 });

  it("a FIPS-mode server pins TLS 1.3 to the AES-GCM suites (ChaCha20 refused); a default server offers ChaCha20", async function () {
    requireTool(this, "openssl");
    const fips = await startServer({ fips: true });
    const plain = await startServer({ fips: false });
    servers.push(fips, plain);
    for (const suite of ["TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256"]) {
      const r = await sClient(fips, suite);
      assert.match(r.stdout, new RegExp(`Cipher is ${suite}`), r.stdout + r.stderr);
    }
    const chacha = await sClient(fips, "TLS_CHACHA20_POLY1305_SHA256");
    assert.doesNotMatch(chacha.stdout, /Cipher is TLS_CHACHA20/);
    assert.match(chacha.stdout + chacha.stderr, /handshake failure|no shared cipher|alert/i);
    const control = await sClient(plain, "TLS_CHACHA20_POLY1305_SHA256");
    assert.match(control.stdout, /Cipher is TLS_CHACHA20_POLY1305_SHA256/, "the default profile is not narrowed (so the check above is not vacuous)");
    assert.ok(fips.logLines.some((l) => l.includes('"fips":true') && l.includes("control plane listening")));
  });

  it("a campaign to a key algorithm the server would refuse is rejected up front (FIPS: Ed25519; policy: allowedKeyAlgorithms)", async () => {
    const fips = await startServer({ fips: true });
    const narrow = await startServer({ overrides: { policy: { allowedKeyAlgorithms: ["ECDSA-P256"] } } });
    servers.push(fips, narrow);
    const rotate = (s: TestServer, alg: string) => nodecert(["rotate", "--all", "--key-algorithm", alg, "--dir", s.dir, "--server", s.url]);
    const ed = await rotate(fips, "Ed25519");
    assert.notEqual(ed.code, 0);
    assert.match(ed.stderr, /cannot rotate to Ed25519: FIPS mode: Ed25519 \(EdDSA\) is not an approved signature algorithm/);
    const rsa = await rotate(narrow, "RSA-2048");
    assert.notEqual(rsa.code, 0);
    assert.match(rsa.stderr, /cannot rotate to RSA-2048: policy.allowedKeyAlgorithms allows only ECDSA-P256/);
    // An approved algorithm passes the check and gets as far as the fleet (empty here).
    const ok = await rotate(fips, "ECDSA-P384");
    assert.match(ok.stderr, /no nodes to rotate/);
  });

  it("requireFipsNodes refuses a join from an agent on the default provider with rule fips-node, storing and installing nothing", async () => {
    const s = await startServer({ overrides: { requireFipsNodes: true } });
    servers.push(s);
    assert.ok(s.logLines.some((l) => l.includes("requireFipsNodes is set but this server does not run on the FIPS provider")), "the operator is told the server itself is not FIPS");
    const root = path.join(tempDir(), "node");
    const r = await nodecert(["join", "--server", s.url, "--token", await s.createToken(), "--ca-cert-hash", s.pin, "--root", root, "--node-name", "plain-node", "--address", "127.0.0.1", "--fips", "off"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /HTTP 403 denied \(rule fips-node\): this server requires FIPS nodes \(requireFipsNodes\) and the agent runs on OpenSSL default provider/);
    assert.equal(await s.store.getNode("plain-node"), undefined);
    assert.ok(!existsSync(nodeLayout(root).current("client")));
    const audit = await s.store.listAudit(50);
    assert.ok(audit.some((e) => e.type === "join.denied" && e.rule === "fips-node"), "the denial is in the audit log");
  });

  it("nodecert status shows the crypto provider the join ran on (default provider here)", async () => {
    const s = await startServer();
    servers.push(s);
    const root = path.join(tempDir(), "node");
    const before = await nodecert(["status", "--root", root]);
    assert.match(before.stdout, /CRYPTO PROVIDER {2}unknown: no agent has recorded one/);
    const j = await nodecert(["join", "--server", s.url, "--token", await s.createToken(), "--ca-cert-hash", s.pin, "--root", root, "--node-name", "n-status", "--address", "127.0.0.1"]);
    assert.equal(j.code, 0, j.stderr);
    const st = await nodecert(["status", "--root", root]);
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, /CRYPTO PROVIDER {2}OpenSSL default provider 3\.\d+\.\d+/);
    assert.match(st.stdout, /FIPS MODE {8}no \(fips: auto; host not in FIPS mode\)/);
    assert.match(st.stdout, /SELF-TEST {8}passed \(fips-flag, sha256, ecdsa-p256, md5\)/);
    assert.match(st.stdout, /RECORDED {9}\S+ by join/);
    const json = JSON.parse((await nodecert(["status", "--root", root, "-o", "json"])).stdout);
    assert.equal(json.crypto.fips, false);
    assert.equal(json.crypto.selfTest.ok, true);
    // The join request carried the agent's crypto summary; the server kept it with the node's facts.
    const node = await s.store.getNode("n-status");
    assert.equal(node?.facts.crypto?.fips, false);
    assert.equal(node?.facts.crypto?.selfTest, "passed");
  });
});
