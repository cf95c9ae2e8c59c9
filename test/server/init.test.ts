import { strict as assert } from "node:assert";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { initServer } from "../../src/server/init.js";
import { serverPaths } from "../../src/server/paths.js";
import { nodeLayout } from "../../src/agent/layout.js";
import { certificateInfo } from "../../src/pki/certificate-info.js";
import { splitCertificates } from "../../src/pki/pem.js";
import { requestJson } from "../../src/platform/https-client.js";
import { nodecert, opensslServer, random, requireTool, run, startServer, tempDir } from "../support/helpers.js";

const sh = (cmd: string, cwd: string) => run("sh", ["-c", cmd], { cwd });

describe("server init: CA creation, provided and intermediate CAs, admin authentication", function () {
  it("creates a P-256 CA for 10 years, seals its key, sets modes, and is idempotent", async () => {
    const dir = path.join(tempDir(), "srv");
    const first = await initServer({ dir, now: new Date(), random });
    const p = serverPaths(dir);
    const ca = certificateInfo(readFileSync(p.caCert, "utf8"));
    assert.equal(ca.keyAlgorithm, "ECDSA-P256");
    assert.ok(ca.isCA && ca.selfSigned);
    const years = (ca.notAfter.getTime() - ca.notBefore.getTime()) / (365 * 86_400_000);
    assert.ok(years > 9.99 && years < 10.01, `CA lifetime ${years} years`);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    for (const f of [p.kek, p.caKeyEnc, p.tlsKey, p.adminKey, p.db]) assert.equal(statSync(f).mode & 0o777, 0o600, f);
    assert.equal(statSync(p.kek).size, 32);
    const sealed = readFileSync(p.caKeyEnc, "utf8");
    assert.doesNotMatch(sealed, /PRIVATE KEY/);
    assert.equal(JSON.parse(sealed).alg, "AES-256-GCM");
    const again = await initServer({ dir, now: new Date(), random });
    assert.equal(again.createdCa, false);
    assert.equal(again.pin, first.pin);
    await assert.rejects(initServer({ dir, now: new Date(), random, caCertPem: "x", caKeyPem: "y" }), /already holds a CA; refusing to replace it/);
  });

  it("uses a kubeadm-style CA (RSA, PKCS#1 key, CN=kubernetes) and nodes join against its pin", async function () {
    requireTool(this, "openssl");
    const d = tempDir();
    const r = await sh(
      "openssl req -x509 -newkey rsa:2048 -nodes -keyout k8.key -out ca.crt -days 3650 -subj /CN=kubernetes " +
        "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign,digitalSignature 2>/dev/null && " +
        "openssl rsa -in k8.key -traditional -out ca.key 2>/dev/null && head -1 ca.key",
      d,
    );
    assert.match(r.stdout, /BEGIN RSA PRIVATE KEY/);
    const pin = (await sh("openssl x509 -in ca.crt -pubkey -noout | openssl pkey -pubin -outform der | sha256sum | cut -d' ' -f1", d)).stdout.trim();
    const init = await nodecert(["server", "init", "--dir", path.join(d, "srv"), "--ca-cert", path.join(d, "ca.crt"), "--ca-key", path.join(d, "ca.key"), "--listen", "127.0.0.1:0"]);
    assert.equal(init.code, 0, init.stderr);
    assert.match(init.stdout, new RegExp(`CA pin: sha256:${pin}`));
    const server = await startServer({ dir: path.join(d, "srv") });
    try {
      const root = path.join(d, "node");
      const j = await nodecert(["join", "--server", server.url, "--token", await server.createToken(), "--ca-cert-hash", `sha256:${pin}`, "--root", root, "--node-name", "n1", "--address", "127.0.0.1"]);
      assert.equal(j.code, 0, j.stderr);
      const l = nodeLayout(root);
      const v = await run("openssl", ["verify", "-CAfile", path.join(d, "ca.crt"), l.current("client"), l.current("serving")]);
      assert.equal(v.code, 0, v.stdout + v.stderr);
      assert.equal(certificateInfo(readFileSync(l.current("client"), "utf8")).issuer, "CN=kubernetes");
    } finally {
      await server.close();
    }
  });

  it("uses an intermediate CA signed by an offline root: serves the chain, pins the root, Go and openssl accept it", async function () {
    requireTool(this, "openssl");
    requireTool(this, "kubectl");
    const d = tempDir();
    const mk = await sh(
      [
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout root.key -out root.crt -days 3650 -subj '/O=Example/CN=Offline Root' -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign",
        "openssl ecparam -genkey -name prime256v1 -noout -out int.key",
        "openssl req -new -key int.key -subj '/O=Example/CN=Cluster Intermediate' -out int.csr",
        "printf 'basicConstraints=critical,CA:TRUE,pathlen:0\\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\\nsubjectKeyIdentifier=hash\\nauthorityKeyIdentifier=keyid\\n' > ext.cnf",
        "openssl x509 -req -in int.csr -CA root.crt -CAkey root.key -CAcreateserial -days 1825 -extfile ext.cnf -out int.crt",
        "cat int.crt root.crt > chain.crt",
      ].join(" 2>/dev/null && ") + " 2>/dev/null",
      d,
    );
    assert.equal(mk.code, 0, mk.stderr);
    const rootPin = (await sh("openssl x509 -in root.crt -pubkey -noout | openssl pkey -pubin -outform der | sha256sum | cut -d' ' -f1", d)).stdout.trim();
    const init = await initServer({ dir: path.join(d, "srv"), listen: "127.0.0.1:0", caCertPem: readFileSync(path.join(d, "chain.crt"), "utf8"), caKeyPem: readFileSync(path.join(d, "int.key"), "utf8"), now: new Date(), random });
    assert.equal(init.pin, `sha256:${rootPin}`);
    const server = await startServer({ dir: path.join(d, "srv") });
    try {
      const root = path.join(d, "node");
      const j = await nodecert(["join", "--server", server.url, "--token", await server.createToken(), "--ca-cert-hash", init.pin, "--root", root, "--node-name", "n1", "--address", "127.0.0.1"]);
      assert.equal(j.code, 0, j.stderr);
      const l = nodeLayout(root);
      assert.equal(splitCertificates(readFileSync(l.current("client"), "utf8")).length, 2, "leaf then intermediate");
      assert.equal(splitCertificates(readFileSync(l.caFile, "utf8")).length, 1, "ca.crt holds only the root");
      const v = await run("openssl", ["verify", "-CAfile", l.caFile, "-untrusted", l.current("client"), l.current("client")]);
      assert.equal(v.code, 0, v.stdout + v.stderr);
      const srv = await opensslServer(["-cert", l.current("serving"), "-key", l.current("serving"), "-cert_chain", l.current("serving"), "-CAfile", l.caFile, "-Verify", "2", "-verify_return_error", "-www", "-tls1_3"]);
      try {
        const k = await run("kubectl", ["--kubeconfig", l.kubeconfig, "--server", `https://127.0.0.1:${srv.port}`, "get", "--raw", "/"]);
        assert.equal(k.code, 0, k.stderr);
        assert.match(k.stdout, /CN\s*=\s*system:node:n1/);
      } finally {
        srv.stop();
      }
    } finally {
      await server.close();
    }
  });

  it("refuses a provided CA whose key does not match, or whose chain lacks the root", async function () {
    requireTool(this, "openssl");
    const d = tempDir();
    await sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout a.key -out a.crt -days 30 -subj /CN=a -addext basicConstraints=critical,CA:TRUE 2>/dev/null && openssl ecparam -genkey -name prime256v1 -noout -out b.key", d);
    await assert.rejects(
      initServer({ dir: path.join(d, "s1"), caCertPem: readFileSync(path.join(d, "a.crt"), "utf8"), caKeyPem: readFileSync(path.join(d, "b.key"), "utf8"), now: new Date(), random }),
      /the CA key does not belong to the first certificate/,
    );
    writeFileSync(path.join(d, "leaf.crt"), "");
    await assert.rejects(initServer({ dir: path.join(d, "s2"), caCertPem: "nothing here", caKeyPem: readFileSync(path.join(d, "b.key"), "utf8"), now: new Date(), random }), /holds no PEM certificate/);
  });

  it("admin endpoints refuse callers without the admin certificate, and token create works with it", async () => {
    const server = await startServer();
    try {
      const noCert = await requestJson(`${server.url}/v1/admin/tokens`, { body: { ttlSeconds: 60 }, tls: { ca: server.ca.bundlePem } });
      assert.equal(noCert.status, 401);
      assert.match((noCert.body as { reason: string }).reason, /need the admin client certificate/);
      // A node's certificate is signed by the same CA but is not the admin certificate.
      const root = path.join(tempDir(), "node");
      const j = await nodecert(["join", "--server", server.url, "--token", await server.createToken(), "--ca-cert-hash", server.pin, "--root", root, "--node-name", "n1", "--address", "127.0.0.1"]);
      assert.equal(j.code, 0, j.stderr);
      const nodePem = readFileSync(nodeLayout(root).current("client"), "utf8");
      const asNode = await requestJson(`${server.url}/v1/admin/tokens`, { body: { ttlSeconds: 60 }, tls: { ca: server.ca.bundlePem, cert: nodePem, key: nodePem } });
      assert.equal(asNode.status, 403);
      const t = await nodecert(["token", "create", "--dir", server.dir, "--server", server.url, "--ttl", "10m", "--node", "n2", "--uses", "2"]);
      assert.equal(t.code, 0, t.stderr);
      assert.match(t.stdout.trim(), /^[a-z0-9]{6}\.[a-z0-9]{16}$/);
      const rec = await server.store.getToken(t.stdout.trim().split(".")[0]);
      assert.equal(rec?.node, "n2");
      assert.equal(rec?.usesLeft, 2);
      assert.ok(Math.abs(rec!.expiresAt.getTime() - Date.now() - 600_000) < 10_000);
    } finally {
      await server.close();
    }
  });
});

describe("server key-encryption key from systemd credentials", () => {
  it("reads the KEK from $CREDENTIALS_DIRECTORY/kek and fails clearly without it", async () => {
    const { serverPaths: sp } = await import("../../src/server/paths.js");
    const { loadCa } = await import("../../src/server/ca/ca.js");
    const { renameSync, mkdirSync } = await import("node:fs");
    const dir = path.join(tempDir(), "srv");
    await initServer({ dir, now: new Date(), random });
    const creds = path.join(tempDir(), "creds");
    mkdirSync(creds);
    renameSync(sp(dir).kek, path.join(creds, "kek"));
    const ca = await loadCa(sp(dir, { CREDENTIALS_DIRECTORY: creds }));
    assert.match(ca.pin, /^sha256:/);
    await assert.rejects(loadCa(sp(dir, {})), /cannot read the key-encryption key at .*kek \(ENOENT\)/);
    // Re-running init after moving the KEK must not mint a new one that can never open the CA key.
    await assert.rejects(initServer({ dir, now: new Date(), random }), /ca\.key\.enc exists but its key-encryption key .*kek does not: if you moved it .*refusing to create a new one/);
    const { existsSync } = await import("node:fs");
    assert.equal(existsSync(sp(dir).kek), false, "no new KEK was written");
  });
});
