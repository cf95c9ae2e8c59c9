import { strict as assert } from "node:assert";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { createSelfSignedCa, crossSignCa, issueLeaf, BACKDATE_MS } from "../../src/pki/certificate.js";
import { createNodeCsr, parseCsr, nodeSubject } from "../../src/pki/csr.js";
import { generateKeyPair, type KeyAlgorithm } from "../../src/pki/keys.js";
import { certificateInfo, EKU_NODECERT_CONTROL_PLANE, EKU_SERVER_AUTH } from "../../src/pki/certificate-info.js";
import { FakeClock, random, requireTool, run, tempDir } from "../support/helpers.js";
import { splitSans } from "../../src/pki/names.js";

async function makeCa(clock: FakeClock, lifetimeMs = 10 * 365 * 86_400_000) {
  const keys = await generateKeyPair("ECDSA-P256");
  const pem = await createSelfSignedCa({ commonName: "test-ca", keys, now: clock.now(), lifetimeMs, random });
  return { pem, issuer: { certPem: pem, privateKey: keys.privateKey, algorithm: keys.algorithm } };
}

describe("pki/certificate", () => {
  for (const alg of ["ECDSA-P256", "RSA-2048"] as KeyAlgorithm[]) {
    it(`issues a ${alg} serving certificate with the extensions the kubelet needs (read by openssl)`, async function () {
      requireTool(this, "openssl");
      const clock = new FakeClock(Date.now());
      const ca = await makeCa(clock);
      const keys = await generateKeyPair(alg);
      const csr = await parseCsr(await createNodeCsr({ kind: "serving", nodeName: "n1", keys, sans: ["n1", "10.1.2.3"] }));
      const leaf = await issueLeaf({ issuer: ca.issuer, subject: nodeSubject("n1"), spki: csr.spki, kind: "serving", sans: splitSans(["n1", "10.1.2.3"]), now: clock.now(), lifetimeMs: 86_400_000, random });
      const dir = tempDir();
      writeFileSync(path.join(dir, "leaf.pem"), leaf.pem);
      writeFileSync(path.join(dir, "ca.pem"), ca.pem);
      const text = (await run("openssl", ["x509", "-in", path.join(dir, "leaf.pem"), "-noout", "-text"])).stdout;
      assert.match(text, /CA:FALSE/);
      assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature/);
      if (alg.startsWith("RSA")) assert.match(text, /Digital Signature, Key Encipherment/);
      else assert.doesNotMatch(text, /Key Encipherment/);
      assert.match(text, /TLS Web Server Authentication/);
      assert.match(text, /X509v3 Subject Key Identifier/);
      assert.match(text, /X509v3 Authority Key Identifier/);
      assert.match(text, /DNS:n1, IP Address:10.1.2.3/);
      assert.match(text, /Subject: O\s*=\s*system:nodes, CN\s*=\s*system:node:n1/);
      const v = await run("openssl", ["verify", "-CAfile", path.join(dir, "ca.pem"), path.join(dir, "leaf.pem")]);
      assert.equal(v.code, 0, v.stdout + v.stderr);
      const info = certificateInfo(leaf.pem);
      assert.equal(info.notBefore.getTime(), Math.floor((clock.t - BACKDATE_MS) / 1000) * 1000);
      assert.equal(info.notAfter.getTime(), Math.floor((clock.t + 86_400_000) / 1000) * 1000);
      assert.deepEqual(info.extendedKeyUsages, [EKU_SERVER_AUTH]);
    });
  }

  it("draws positive serials of up to 128 bits that differ every time", async () => {
    const clock = new FakeClock();
    const ca = await makeCa(clock);
    const keys = await generateKeyPair("ECDSA-P256");
    const spki = (await parseCsr(await createNodeCsr({ kind: "client", nodeName: "n", keys }))).spki;
    const serials = new Set<string>();
    let longest = 0;
    for (let i = 0; i < 40; i++) {
      const leaf = await issueLeaf({ issuer: ca.issuer, subject: nodeSubject("n"), spki, kind: "client", now: clock.now(), lifetimeMs: 3600_000, random });
      serials.add(leaf.serial);
      longest = Math.max(longest, leaf.serial.length);
      assert.ok(leaf.serial.length <= 32, `serial ${leaf.serial} longer than 128 bits`);
      assert.ok(BigInt("0x" + leaf.serial) > 0n);
    }
    assert.equal(serials.size, 40);
    assert.ok(longest >= 30, "serials should use the full 128 bits");
  });

  it("never issues a leaf that outlives its CA", async () => {
    const clock = new FakeClock();
    const ca = await makeCa(clock, 10 * 86_400_000);
    const keys = await generateKeyPair("ECDSA-P256");
    const spki = (await parseCsr(await createNodeCsr({ kind: "client", nodeName: "n", keys }))).spki;
    const leaf = await issueLeaf({ issuer: ca.issuer, subject: nodeSubject("n"), spki, kind: "client", now: clock.now(), lifetimeMs: 365 * 86_400_000, random });
    assert.equal(leaf.notAfter.getTime(), certificateInfo(ca.pem).notAfter.getTime());
  });

  it("builds the extended key usages from the kind alone: only the server's TLS certificate is the control plane (read by openssl)", async function () {
    requireTool(this, "openssl");
    const clock = new FakeClock(Date.now());
    const ca = await makeCa(clock);
    const keys = await generateKeyPair("ECDSA-P256");
    const spki = (await parseCsr(await createNodeCsr({ kind: "serving", nodeName: "n1", keys, sans: ["n1"] }))).spki;
    const dir = tempDir();
    const ekuText = async (kind: "client" | "serving" | "server" | "admin") => {
      const leaf = await issueLeaf({ issuer: ca.issuer, subject: nodeSubject("n1"), spki, kind, sans: { dns: ["n1"], ip: [] }, now: clock.now(), lifetimeMs: 86_400_000, random });
      writeFileSync(path.join(dir, `${kind}.pem`), leaf.pem);
      return (await run("openssl", ["x509", "-in", path.join(dir, `${kind}.pem`), "-noout", "-ext", "extendedKeyUsage"])).stdout.split("\n")[1].trim();
    };
    assert.equal(await ekuText("server"), `TLS Web Server Authentication, ${EKU_NODECERT_CONTROL_PLANE}`);
    assert.equal(await ekuText("serving"), "TLS Web Server Authentication");
    assert.equal(await ekuText("client"), "TLS Web Client Authentication");
    assert.equal(await ekuText("admin"), "TLS Web Client Authentication");
    assert.match(EKU_NODECERT_CONTROL_PLANE, /^2\.25\.\d{30,39}$/, "X.667: 2.25.<UUID as an integer>");
  });

  it("keeps DNS and IP SANs apart: an IP-shaped DNS name stays a DNS SAN (never retyped)", async function () {
    requireTool(this, "openssl");
    const clock = new FakeClock(Date.now());
    const ca = await makeCa(clock);
    const keys = await generateKeyPair("ECDSA-P256");
    const spki = (await parseCsr(await createNodeCsr({ kind: "serving", nodeName: "n1", keys, sans: ["n1"] }))).spki;
    const leaf = await issueLeaf({ issuer: ca.issuer, subject: nodeSubject("n1"), spki, kind: "serving", sans: { dns: ["192.168.7.7"], ip: ["10.0.0.1"] }, now: clock.now(), lifetimeMs: 86_400_000, random });
    const f = path.join(tempDir(), "l.pem");
    writeFileSync(f, leaf.pem);
    assert.match((await run("openssl", ["x509", "-in", f, "-noout", "-ext", "subjectAltName"])).stdout, /DNS:192\.168\.7\.7, IP Address:10\.0\.0\.1/);
  });

  it("cross-signs a CA: same subject, key and SKI, issued by the other CA, capped by its validity; openssl verifies a leaf of the new CA through it", async function () {
    requireTool(this, "openssl");
    const clock = new FakeClock(Date.now());
    const oldCa = await makeCa(clock, 30 * 86_400_000);
    const keys = await generateKeyPair("ECDSA-P256");
    const newPem = await createSelfSignedCa({ commonName: "new-ca", keys, now: clock.now(), lifetimeMs: 3650 * 86_400_000, random });
    const newCa = { certPem: newPem, privateKey: keys.privateKey, algorithm: keys.algorithm };
    const cross = await crossSignCa({ subjectCertPem: newPem, issuer: oldCa.issuer, now: clock.now(), random });
    const c = certificateInfo(cross);
    const n = certificateInfo(newPem);
    assert.equal(c.subject, n.subject);
    assert.equal(c.spkiPin, n.spkiPin);
    assert.equal(c.issuer, certificateInfo(oldCa.pem).subject);
    assert.equal(c.isCA, true);
    assert.equal(c.notAfter.getTime(), certificateInfo(oldCa.pem).notAfter.getTime(), "never outlives the CA that vouches");
    const lk = await generateKeyPair("ECDSA-P256");
    const lspki = (await parseCsr(await createNodeCsr({ kind: "serving", nodeName: "n1", keys: lk, sans: ["n1"] }))).spki;
    const leaf = await issueLeaf({ issuer: newCa, subject: nodeSubject("n1"), spki: lspki, kind: "serving", sans: { dns: ["n1"], ip: [] }, now: clock.now(), lifetimeMs: 86_400_000, random });
    const d = tempDir();
    for (const [f, pem] of [["old.pem", oldCa.pem], ["new.pem", newPem], ["cross.pem", cross], ["leaf.pem", leaf.pem]]) writeFileSync(path.join(d, f), pem);
    const verify = (anchor: string, untrusted?: string) => run("openssl", ["verify", "-CAfile", path.join(d, anchor), ...(untrusted ? ["-untrusted", path.join(d, untrusted)] : []), path.join(d, "leaf.pem")]);
    assert.equal((await verify("old.pem", "cross.pem")).code, 0, "anchored in the old CA, through the cross-certificate");
    assert.equal((await verify("new.pem", "cross.pem")).code, 0, "anchored in the new CA");
    assert.notEqual((await verify("old.pem")).code, 0, "without the cross-certificate the old CA does not anchor it");
    await assert.rejects(crossSignCa({ subjectCertPem: leaf.pem, issuer: oldCa.issuer, now: clock.now(), random }), /is not a CA certificate/);
  });
});
