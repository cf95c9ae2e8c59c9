import { strict as assert } from "node:assert";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { createSelfSignedCa, issueLeaf, BACKDATE_MS } from "../../src/pki/certificate.js";
import { createNodeCsr, parseCsr, nodeSubject } from "../../src/pki/csr.js";
import { generateKeyPair, type KeyAlgorithm } from "../../src/pki/keys.js";
import { certificateInfo, EKU_SERVER_AUTH } from "../../src/pki/certificate-info.js";
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
});
