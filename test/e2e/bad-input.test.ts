import { strict as assert } from "node:assert";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import https from "node:https";
import path from "node:path";
import { FakeClock, nodecert, random, requireTool, startServer, tempDir, type TestServer } from "../support/helpers.js";
import { nodeLayout } from "../../src/agent/layout.js";
import { requestJson } from "../../src/platform/https-client.js";
import { createNodeCsr, nodeSubject, parseCsr } from "../../src/pki/csr.js";
import { generateKeyPair, type KeyAlgorithm } from "../../src/pki/keys.js";
import { subtle, x509 } from "../../src/crypto/provider.js";
import { PROTOCOL_VERSION, type JoinRequest } from "../../src/protocol/messages.js";
import { loadCa } from "../../src/server/ca/ca.js";
import { sign } from "../../src/server/ca/signer.js";
import { opensslCsr, pem, withRsaExponentOne } from "../support/hostile-csr.js";
import { joinRaw } from "../support/node-client.js";

const facts = { hostname: "node-b", addresses: ["127.0.0.1"], agentVersion: "test" };

async function joinBody(o: { node?: string; csrNode?: string; sans?: string[]; alg?: KeyAlgorithm } = {}): Promise<JoinRequest> {
  const keys = await generateKeyPair(o.alg ?? "ECDSA-P256");
  const csrNode = o.csrNode ?? o.node ?? "node-b";
  return {
    v: PROTOCOL_VERSION,
    nodeName: o.node ?? "node-b",
    facts,
    csrs: {
      client: await createNodeCsr({ kind: "client", nodeName: csrNode, keys }),
      serving: await createNodeCsr({ kind: "serving", nodeName: csrNode, keys, sans: o.sans ?? ["node-b", "127.0.0.1"] }),
    },
  };
}

describe("e2e: bad input gets a clear error and changes nothing", function () {
  let server: TestServer;
  let ca: string;
  before(async () => {
    server = await startServer({ overrides: { tokens: { maxFailures: 50, failureWindow: "1m" } } });
    ca = server.ca.bundlePem;
  });
  after(async () => server?.close());

  const post = (body: unknown, token?: string, raw?: string) =>
    requestJson(`${server.url}/v1/join`, { body: raw === undefined ? body : undefined, rawBody: raw, headers: token ? { authorization: `Bearer ${token}` } : {}, tls: { ca } });

  async function expectNothingStored(node: string) {
    assert.deepEqual(await server.store.listCertificates(node), [], `no certificate recorded for ${node}`);
    assert.equal(await server.store.getNode(node), undefined);
  }

  function expectNothingInstalled(root: string) {
    const l = nodeLayout(root);
    assert.ok(!existsSync(l.current("client")) && !existsSync(l.current("serving")), "no current certificate");
    assert.ok(!existsSync(l.caFile) && !existsSync(l.kubeconfig) && !existsSync(l.stateFile));
    if (existsSync(l.pkiDir)) assert.deepEqual(readdirSync(l.pkiDir), []);
  }

  async function cliJoin(token: string, extra: string[] = [], pin = server.pin) {
    const root = path.join(tempDir(), "node");
    const r = await nodecert(["join", "--server", server.url, "--token", token, "--ca-cert-hash", pin, "--root", root, "--node-name", "node-b", "--address", "127.0.0.1", ...extra]);
    return { ...r, root };
  }

  it("a wrong token: 401 'not recognised', nothing installed", async () => {
    const r = await cliJoin("abcdef.0123456789abcdef");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /join refused .* HTTP 401 token-invalid: bootstrap token is not recognised/);
    expectNothingInstalled(r.root);
    await expectNothingStored("node-b");
  });

  it("an expired token: 401 with when it expired", async () => {
    const clock = new FakeClock(Date.now());
    const s = await startServer({ clock });
    try {
      const token = await s.createToken({ ttlMs: 60_000 });
      clock.advance(61_000);
      const root = path.join(tempDir(), "node");
      const r = await nodecert(["join", "--server", s.url, "--token", token, "--ca-cert-hash", s.pin, "--root", root, "--node-name", "node-b", "--address", "127.0.0.1"]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /token-expired: bootstrap token \w+ expired at/);
      expectNothingInstalled(root);
      assert.deepEqual(await s.store.listCertificates("node-b"), []);
    } finally {
      await s.close();
    }
  });

  it("a reused single-use token: the second join is refused as used", async () => {
    const token = await server.createToken();
    const first = await cliJoin(token, ["--node-name", "node-c"]);
    assert.equal(first.code, 0, first.stderr);
    const second = await cliJoin(token, ["--node-name", "node-d"]);
    assert.equal(second.code, 1);
    assert.match(second.stderr, /token-used: bootstrap token \w+ has already been used/);
    expectNothingInstalled(second.root);
    await expectNothingStored("node-d");
  });

  it("a wrong CA pin: refused before any token is sent", async () => {
    const token = await server.createToken();
    const r = await cliJoin(token, [], "sha256:" + "0".repeat(64));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /CA pin mismatch: expected sha256:0{64}, the server at .* presented sha256:[0-9a-f]{64}/);
    expectNothingInstalled(r.root);
    assert.equal((await server.store.getToken(token.split(".")[0]))!.usesLeft, 1, "token untouched");
  });

  it("a CSR for another node's name: 403 by rule 'subject', audited, token not spent", async () => {
    const token = await server.createToken();
    const r = await post(await joinBody({ node: "node-b", csrNode: "node-z" }), token);
    assert.equal(r.status, 403);
    assert.deepEqual({ ...(r.body as object), reason: undefined }, { error: "denied", rule: "subject", reason: undefined });
    assert.match((r.body as { reason: string }).reason, /CN is \[system:node:node-z\], it must be "system:node:node-b"/);
    const audit = await server.store.listAudit(5);
    assert.ok(audit.some((e) => e.type === "join.denied" && e.rule === "subject" && e.node === "node-b"));
    await expectNothingStored("node-b");
    assert.equal((await server.store.getToken(token.split(".")[0]))!.usesLeft, 1);
  });

  it("a token bound to another node: 403 by rule 'token-binding'", async () => {
    const token = await server.createToken({ node: "node-q" });
    const r = await post(await joinBody(), token);
    assert.equal(r.status, 403);
    assert.equal((r.body as { rule: string }).rule, "token-binding");
  });

  it("a serving SAN the node does not own: 403 by rule 'serving-sans-owned', even when its facts claim it", async () => {
    const token = await server.createToken();
    const body = await joinBody({ sans: ["node-b", "10.9.9.9"] });
    body.facts = { ...body.facts, addresses: ["127.0.0.1", "10.9.9.9"] };
    const r = await post(body, token);
    assert.equal(r.status, 403);
    assert.equal((r.body as { rule: string }).rule, "serving-sans-owned");
    assert.match((r.body as { reason: string }).reason, /IP SAN 10.9.9.9 is not one this control plane allows node "node-b" \(it allows node-b \(node-name\), 127.0.0.1 \(join-address\)\)/);
    await expectNothingStored("node-b");
  });

  it("an RSA-1024 key: 403 by rule 'key-strength'", async () => {
    const token = await server.createToken();
    const params = { name: "RSASSA-PKCS1-v1_5", modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" };
    const keys = (await subtle.generateKey(params, true, ["sign", "verify"])) as CryptoKeyPair;
    const mk = async (ext: x509.Extension[]) => (await x509.Pkcs10CertificateRequestGenerator.create({ name: nodeSubject("node-b"), keys, signingAlgorithm: params, extensions: ext })).toString("pem");
    const body = await joinBody();
    body.csrs.client = await mk([]);
    body.csrs.serving = await mk([new x509.SubjectAlternativeNameExtension([{ type: "dns", value: "node-b" }])]);
    const r = await post(body, token);
    assert.equal(r.status, 403);
    assert.equal((r.body as { rule: string }).rule, "key-strength");
    assert.match((r.body as { reason: string }).reason, /RSA 1024; RSA keys need at least 2048 bits/);
    await expectNothingStored("node-b");
  });

  it("RSA CSRs with public exponent 1 and 3 (openssl): join and renewal 403 by rule 'key-strength', nothing signed", async function () {
    requireTool(this, "openssl");
    const rsa = (exp?: number) => ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", ...(exp ? ["-pkeyopt", `rsa_keygen_pubexp:${exp}`] : [])];
    const made = await opensslCsr({ nodeName: "node-b", kind: "client", genpkey: rsa() });
    const e1Client = pem(withRsaExponentOne(made.der, made.keyFile));
    const e3Serving = pem((await opensslCsr({ nodeName: "node-b", kind: "serving", sans: ["node-b", "127.0.0.1"], genpkey: rsa(3) })).der);
    for (const [what, patch, re] of [
      ["e = 1 client", { client: e1Client }, /client CSR's RSA key has public exponent 1; only 65537/],
      ["e = 3 serving", { serving: e3Serving }, /serving CSR's RSA key has public exponent 3; only 65537/],
    ] as const) {
      const token = await server.createToken();
      const body = await joinBody();
      Object.assign(body.csrs, patch);
      const r = await post(body, token);
      assert.equal(r.status, 403, what);
      assert.equal((r.body as { rule: string }).rule, "key-strength", what);
      assert.match((r.body as { reason: string }).reason, re);
      await expectNothingStored("node-b");
    }
    // Renewal: a joined node asking for an e = 3 serving certificate.
    const joined = await joinRaw(server, "node-e3", await server.createToken());
    const serving = pem((await opensslCsr({ nodeName: "node-e3", kind: "serving", sans: ["node-e3", "127.0.0.1"], genpkey: rsa(3) })).der);
    const before = (await server.store.listCertificates("node-e3")).length;
    const r = await requestJson(`${server.url}/v1/renew`, { body: { v: 1, facts: { ...facts, hostname: "node-e3" }, csrs: { serving } }, tls: { ca, cert: joined.credential!.pem, key: joined.credential!.pem } });
    assert.equal(r.status, 403);
    assert.equal((r.body as { rule: string }).rule, "key-strength");
    assert.equal((await server.store.listCertificates("node-e3")).length, before, "nothing signed");
  });

  it("node facts with an IPv6 zone id or a non-address: 400 naming the field, token not spent", async () => {
    const token = await server.createToken();
    for (const bad of ["fe80::1%eth0", "::1%1", "127.0.0.1%lo", "not-an-ip", "1.2.3.4.5", "::ffff:1.2.3.4%x", ""]) {
      const body = await joinBody();
      body.facts = { ...facts, addresses: ["127.0.0.1", bad] };
      const r = await post(body, token);
      assert.equal(r.status, 400, `${JSON.stringify(bad)}: ${JSON.stringify(r.body)}`);
      assert.match((r.body as { reason: string }).reason, /^facts\.addresses\.1: must be an IPv4 or IPv6 address literal without a zone id/, JSON.stringify(bad));
    }
    assert.equal((await server.store.getToken(token.split(".")[0]))!.usesLeft, 1);
    await expectNothingStored("node-b");
  });

  it("a bad token is refused before the body is read: 401 while the body is still on its way, then the connection is closed", async () => {
    const { connect } = await import("node:tls");
    const socket = connect({ host: "127.0.0.1", port: server.port, ca, minVersion: "TLSv1.3", servername: "localhost" });
    await new Promise((r, j) => (socket.once("secureConnect", r), socket.once("error", j)));
    // Promise 60 KB, send none of it.
    socket.write("POST /v1/join HTTP/1.1\r\nhost: x\r\nauthorization: Bearer abcdef.0123456789abcdef\r\ncontent-type: application/json\r\ncontent-length: 60000\r\n\r\n");
    let answer = "";
    socket.on("data", (d) => (answer += d));
    await new Promise<void>((resolve) => socket.once("close", () => resolve()));
    assert.match(answer, /^HTTP\/1\.1 401 /);
    assert.match(answer, /token-invalid/);
    assert.match(answer, /connection: close/i);
  });

  it("garbage, malformed and oversized bodies: 400/413 with reasons, and the server stays up", async () => {
    const token = await server.createToken();
    const garbage = await post(undefined, token, "{not json");
    assert.equal(garbage.status, 400);
    assert.match(JSON.stringify(garbage.body), /JSON/i);
    const wrongShape = await post({ v: 1, nodeName: "node-b", facts, csrs: { client: "hello" } }, token);
    assert.equal(wrongShape.status, 400);
    assert.match((wrongShape.body as { reason: string }).reason, /csrs\.client: must be a PEM CERTIFICATE REQUEST/);
    const notCsr = await joinBody();
    notCsr.csrs.client = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n";
    const bad = await post(notCsr, token);
    assert.equal(bad.status, 400);
    assert.match((bad.body as { reason: string }).reason, /client CSR: CSR is not a valid PKCS#10 request/);
    const huge = await post(undefined, token, JSON.stringify({ pad: "x".repeat(100 * 1024) }));
    assert.equal(huge.status, 413);
    assert.match((huge.body as { reason: string }).reason, /exceeds 65536 bytes/);
    const health = await requestJson(`${server.url}/healthz`, { tls: { ca } });
    assert.equal(health.status, 200);
    assert.equal((await server.store.getToken(token.split(".")[0]))!.usesLeft, 1);
    await expectNothingStored("node-b");
  });

  it("repeated bad tokens from one source are rate-limited with 429", async () => {
    const s = await startServer({ overrides: { tokens: { maxFailures: 3, failureWindow: "1m" } } });
    try {
      const codes: number[] = [];
      for (let i = 0; i < 5; i++) {
        const r = await requestJson(`${s.url}/v1/join`, { body: {}, headers: { authorization: "Bearer abcdef.0123456789abcdef" }, tls: { ca: s.ca.bundlePem } });
        codes.push(r.status);
      }
      assert.deepEqual(codes, [401, 401, 401, 429, 429]);
      const good = await s.createToken();
      const blocked = await requestJson(`${s.url}/v1/join`, { body: await joinBody(), headers: { authorization: `Bearer ${good}` }, tls: { ca: s.ca.bundlePem } });
      assert.equal(blocked.status, 429, "even a good token waits out the block");
      assert.match((blocked.body as { reason: string }).reason, /too many failed token attempts from 127.0.0.1; retry in \d+s/);
    } finally {
      await s.close();
    }
  });

  it("a server that returns a certificate for a different key: the agent verifies, refuses and installs nothing", async () => {
    // An impostor holding the real CA key (worst case) signs a key the node never generated.
    const real = await loadCa((await import("../../src/server/paths.js")).serverPaths(server.dir));
    const tls = { cert: readFileSync(server.paths.tlsCert), key: readFileSync(server.paths.tlsKey), minVersion: "TLSv1.3" as const };
    const evil = https.createServer(tls, (req, res) => {
      let data = "";
      req.on("data", (c) => (data += c));
      // eslint-disable-next-line @typescript-eslint/no-misused-promises -- a test peer: a rejection here fails the test as an unhandled rejection
      req.on("end", async () => {
        res.setHeader("content-type", "application/json");
        if (req.url === "/v1/ca") return res.end(JSON.stringify({ v: 1, caBundle: real.bundlePem }));
        const jr = JSON.parse(data) as JoinRequest;
        const mallory = await generateKeyPair("ECDSA-P256");
        const spki = (await parseCsr(await createNodeCsr({ kind: "client", nodeName: jr.nodeName, keys: mallory }))).spki;
        const servingSans = await parseCsr(jr.csrs.serving);
        const c = await sign(real, { owner: jr.nodeName, subject: nodeSubject(jr.nodeName), spki, kind: "client", lifetimeMs: 86_400_000 }, new Date(), random);
        const sv = await sign(real, { owner: jr.nodeName, subject: nodeSubject(jr.nodeName), spki, kind: "serving", sans: servingSans.sans, lifetimeMs: 86_400_000 }, new Date(), random);
        res.end(JSON.stringify({ v: 1, nodeName: jr.nodeName, certificates: { client: c.chainPem, serving: sv.chainPem }, caBundle: real.bundlePem, apiServer: "https://127.0.0.1:6443" }));
      });
    });
    await new Promise<void>((r) => evil.listen(0, "127.0.0.1", r));
    try {
      const root = path.join(tempDir(), "node");
      const port = (evil.address() as { port: number }).port;
      const r = await nodecert(["join", "--server", `https://127.0.0.1:${port}`, "--token", "abcdef.0123456789abcdef", "--ca-cert-hash", server.pin, "--root", root, "--node-name", "node-b", "--address", "127.0.0.1"]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /kubelet client certificate failed verification: certificate is not for this node's private key/);
      expectNothingInstalled(root);
    } finally {
      evil.close();
    }
  });

  it("a /v1/ca bundle that adds an unpinned CA next to the pinned one gains no trust: the impostor's TLS is refused and the token never leaves the node", async () => {
    // The attacker can put the real (public) CA certificate in its bundle to satisfy the pin,
    // but holds only its own CA's key: its TLS certificate and anything it signs chain to that.
    const attacker = await startServer();
    await attacker.close();
    const attackerCa = await loadCa((await import("../../src/server/paths.js")).serverPaths(attacker.dir));
    const tls = { cert: readFileSync(attacker.paths.tlsCert), key: readFileSync(attacker.paths.tlsKey), minVersion: "TLSv1.3" as const };
    const seen: string[] = [];
    const evil = https.createServer(tls, (req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers.authorization ?? ""}`);
      res.setHeader("content-type", "application/json");
      if (req.url === "/v1/ca") return res.end(JSON.stringify({ v: 1, caBundle: server.ca.bundlePem + attackerCa.bundlePem }));
      res.statusCode = 500;
      res.end("{}");
    });
    await new Promise<void>((r) => evil.listen(0, "127.0.0.1", r));
    try {
      const root = path.join(tempDir(), "node");
      const port = (evil.address() as { port: number }).port;
      const r = await nodecert(["join", "--server", `https://127.0.0.1:${port}`, "--token", "abcdef.0123456789abcdef", "--ca-cert-hash", server.pin, "--root", root, "--node-name", "node-b", "--address", "127.0.0.1"]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /cannot reach https:\/\/127\.0\.0\.1:\d+: .*(self.signed|unable to (get|verify)|UNABLE_TO)/i);
      assert.deepEqual(seen, ["GET /v1/ca "], "only the untrusted CA fetch reached the impostor; the token was never sent");
      expectNothingInstalled(root);
    } finally {
      evil.close();
    }
  });
});
