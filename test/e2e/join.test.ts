import { strict as assert } from "node:assert";
import { promises as fs, readFileSync, lstatSync, statSync } from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { nodecert, opensslServer, requireTool, run, startServer, tempDir, type TestServer } from "../support/helpers.js";
import { nodeLayout } from "../../src/agent/layout.js";
import { certificateInfo } from "../../src/pki/certificate-info.js";

describe("e2e: init → token → join on loopback, checked by openssl and kubectl", function () {
  let server: TestServer;
  let root: string;
  let layout: ReturnType<typeof nodeLayout>;
  let joinOut: string;

  before(async function () {
    server = await startServer();
    root = path.join(tempDir(), "node");
    layout = nodeLayout(root);
    const token = await server.createToken();
    const r = await nodecert(["join", "--server", server.url, "--token", token, "--ca-cert-hash", server.pin, "--root", root, "--node-name", "node-a", "--address", "127.0.0.1"]);
    assert.equal(r.code, 0, r.stderr);
    joinOut = r.stdout + r.stderr;
  });
  after(async () => server?.close());

  it("installs the kubelet layout with the specified modes and atomic symlinks", async () => {
    const mode = (p: string) => statSync(p).mode & 0o777;
    assert.equal(mode(layout.pkiDir), 0o700);
    assert.equal(mode(layout.stateDir), 0o700);
    for (const kind of ["client", "serving"] as const) {
      const link = layout.current(kind);
      assert.ok(lstatSync(link).isSymbolicLink(), `${link} is a symlink`);
      const target = await fs.readlink(link);
      assert.match(target, new RegExp(`^${layout.prefix(kind)}-\\d{4}-\\d\\d-\\d\\d-\\d\\d-\\d\\d-\\d\\d\\.pem$`));
      assert.equal(mode(path.join(layout.pkiDir, target)), 0o600);
      const content = readFileSync(link, "utf8");
      assert.match(content, /BEGIN CERTIFICATE[\s\S]*BEGIN PRIVATE KEY/, "chain then key in one file");
    }
    for (const f of [layout.caFile, layout.kubeconfig, layout.stateFile]) assert.equal(mode(f), 0o600, f);
    const leftovers = (await fs.readdir(layout.pkiDir)).filter((n) => n.includes("tmp"));
    assert.deepEqual(leftovers, []);
    const kc = YAML.parse(readFileSync(layout.kubeconfig, "utf8"));
    assert.equal(kc.users[0].user["client-certificate"], layout.current("client"));
    assert.equal(kc.users[0].user["client-key"], layout.current("client"));
    assert.equal(kc.clusters[0].cluster["certificate-authority"], layout.caFile);
    assert.equal(JSON.parse(readFileSync(layout.stateFile, "utf8")).schemaVersion, 1);
    assert.match(joinOut, /kubelet-client .* valid/);
  });

  it("both certificates verify against ca.crt with openssl, and each key matches its certificate", async function () {
    requireTool(this, "openssl");
    const v = await run("openssl", ["verify", "-CAfile", layout.caFile, layout.current("client"), layout.current("serving")]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    for (const kind of ["client", "serving"] as const) {
      const fromCert = await run("openssl", ["x509", "-in", layout.current(kind), "-noout", "-pubkey"]);
      const fromKey = await run("openssl", ["pkey", "-in", layout.current(kind), "-pubout"]);
      assert.equal(fromCert.stdout, fromKey.stdout);
      assert.match(fromKey.stdout, /BEGIN PUBLIC KEY/);
    }
    const text = (await run("openssl", ["x509", "-in", layout.current("serving"), "-noout", "-ext", "subjectAltName,extendedKeyUsage"])).stdout;
    assert.match(text, /DNS:node-a/);
    assert.match(text, /IP Address:127.0.0.1/);
    assert.match(text, /TLS Web Server Authentication/);
  });

  it("the server refuses TLS 1.2 and speaks TLS 1.3", async function () {
    requireTool(this, "openssl");
    const port = new URL(server.url).port;
    const old = await run("openssl", ["s_client", "-connect", `127.0.0.1:${port}`, "-tls1_2"], { input: "" });
    assert.notEqual(old.code, 0);
    assert.match(old.stdout + old.stderr, /alert protocol version|Cipher is \(NONE\)/);
    const ok = await run("openssl", ["s_client", "-connect", `127.0.0.1:${port}`, "-CAfile", layout.caFile, "-verify_return_error"], { input: "" });
    assert.match(ok.stdout, /New, TLSv1.3/);
    assert.match(ok.stdout, /Verify return code: 0 \(ok\)/);
  });

  it("kubectl (Go's TLS) completes mTLS with kubelet.conf against an openssl server that demands a client certificate", async function () {
    requireTool(this, "openssl");
    requireTool(this, "kubectl");
    const srv = await opensslServer(["-cert", layout.current("serving"), "-key", layout.current("serving"), "-CAfile", layout.caFile, "-Verify", "1", "-verify_return_error", "-www", "-tls1_3"]);
    try {
      const r = await run("kubectl", ["--kubeconfig", layout.kubeconfig, "--server", `https://127.0.0.1:${srv.port}`, "get", "--raw", "/"]);
      assert.equal(r.code, 0, r.stderr);
      // s_server -www echoes the session, including the client certificate it verified.
      assert.match(r.stdout, /Subject: O\s*=\s*system:nodes, CN\s*=\s*system:node:node-a/);
      assert.match(r.stdout, /TLSv1.3/);
    } finally {
      srv.stop();
    }
  });

  it("kubectl accepts the kubelet serving certificate for its IP SAN and its DNS SAN, and rejects another name", async function () {
    requireTool(this, "openssl");
    requireTool(this, "kubectl");
    const srv = await opensslServer(["-cert", layout.current("serving"), "-key", layout.current("serving"), "-www", "-tls1_3"]);
    try {
      const base = ["--kubeconfig", layout.kubeconfig, "--server", `https://127.0.0.1:${srv.port}`];
      const byIp = await run("kubectl", [...base, "get", "--raw", "/"]);
      assert.equal(byIp.code, 0, byIp.stderr);
      const byName = await run("kubectl", [...base, "--tls-server-name", "node-a", "get", "--raw", "/"]);
      assert.equal(byName.code, 0, byName.stderr);
      const wrong = await run("kubectl", [...base, "--tls-server-name", "node-b", "get", "--raw", "/"]);
      assert.notEqual(wrong.code, 0);
      assert.match(wrong.stderr, /certificate is valid for node-a|not node-b/);
    } finally {
      srv.stop();
    }
  });

  it("the server recorded the node, both certificates and an audit event", async () => {
    const certs = await server.store.listCertificates("node-a");
    const onDisk = ["client", "serving"].map((k) => certificateInfo(readFileSync(layout.current(k as "client"), "utf8")).serial);
    assert.deepEqual(certs.map((c) => c.serial).sort(), onDisk.sort());
    assert.equal((await server.store.getNode("node-a"))?.facts.addresses[0], "127.0.0.1");
    const audit = await server.store.listAudit();
    assert.ok(audit.some((e) => e.type === "join.issued" && e.node === "node-a"));
  });

  it("status prints the table (exit 0), JSON on request, and a second join changes nothing", async () => {
    const table = await nodecert(["status", "--root", root]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^CERTIFICATE\s+EXPIRES\s+RESIDUAL TIME\s+ISSUER\s+KEY\s+SERIAL/);
    assert.match(table.stdout, /kubelet-server\s+\S+ \S+ UTC\s+36[45]d/);
    const json = JSON.parse((await nodecert(["status", "--root", root, "-o", "json"])).stdout);
    assert.deepEqual(json.certificates.map((c: { state: string }) => c.state), ["valid", "valid", "valid"]);
    const before = await fs.readdir(layout.pkiDir);
    const again = await nodecert(["join", "--server", server.url, "--token", "aaaaaa.bbbbbbbbbbbbbbbb", "--ca-cert-hash", server.pin, "--root", root]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /already joined as node-a/);
    assert.deepEqual(await fs.readdir(layout.pkiDir), before);
  });

  it("status exits non-zero when a certificate is missing", async () => {
    const empty = path.join(tempDir(), "empty");
    const r = await nodecert(["status", "--root", empty]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /kubelet-client\s+<missing>/);
  });
});
