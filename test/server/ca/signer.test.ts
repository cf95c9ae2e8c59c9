// The signer's fast path: the record it returns (serial, validity, fingerprint, issuer) is what the
// certificate holds, read back here by OpenSSL; each loaded CA gets its own signing context, so after
// a CA rotation (a new LoadedCa) leaves are issued and recorded by the new CA; and subjects the DER
// writer does not take still get a certificate, through @peculiar/x509.
import { strict as assert } from "node:assert";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { createSelfSignedCa } from "../../../src/pki/certificate.js";
import { generateKeyPair } from "../../../src/pki/keys.js";
import { nodeSubject } from "../../../src/pki/csr.js";
import { certificateInfo } from "../../../src/pki/certificate-info.js";
import { certificatePin } from "../../../src/pki/pin.js";
import { sign, signerFallbacks } from "../../../src/server/ca/signer.js";
import type { LoadedCa } from "../../../src/server/ca/ca.js";
import { subtle } from "../../../src/crypto/provider.js";
import { random, requireTool, run, tempDir } from "../../support/helpers.js";

async function loadedCa(name: string): Promise<LoadedCa> {
  const keys = await generateKeyPair("ECDSA-P256");
  const certPem = await createSelfSignedCa({ commonName: name, keys, now: new Date(), lifetimeMs: 86_400_000 * 30, random });
  return { issuer: { certPem, privateKey: keys.privateKey, algorithm: "ECDSA-P256" }, intermediatesPem: "", bundlePem: certPem, pin: certificatePin(certPem) };
}

describe("server/ca/signer: the fast path's record and the CA it signs with", function () {
  this.timeout(60_000);

  it("records what the certificate holds, signed by whichever CA is loaded (old, then the rotated one)", async function () {
    requireTool(this, "openssl");
    const dir = tempDir();
    const spki = await subtle.exportKey("spki", (await generateKeyPair("ECDSA-P256")).publicKey);
    const fallbacks = signerFallbacks.count;
    for (const ca of [await loadedCa("old-ca"), await loadedCa("new-ca")]) {
      const now = new Date();
      const s = await sign(ca, { owner: "n1", subject: nodeSubject("n1"), spki, kind: "serving", sans: { dns: ["n1"], ip: ["10.1.2.3"] }, lifetimeMs: 86_400_000 }, now, random);
      const info = certificateInfo(s.chainPem);
      assert.equal(s.record.serial, info.serial);
      assert.equal(s.record.fingerprint256, info.fingerprint256);
      assert.equal(s.record.notBefore.getTime(), info.notBefore.getTime());
      assert.equal(s.record.notAfter.getTime(), info.notAfter.getTime());
      assert.equal(s.record.issuerFingerprint, certificateInfo(ca.issuer.certPem).fingerprint256);
      assert.deepEqual(s.record.sans, { dns: ["n1"], ip: ["10.1.2.3"] });
      assert.deepEqual(info.sans, { dns: ["n1"], ip: ["10.1.2.3"] });
      writeFileSync(path.join(dir, "ca.pem"), ca.issuer.certPem);
      writeFileSync(path.join(dir, "leaf.pem"), s.chainPem);
      const v = await run("openssl", ["verify", "-purpose", "sslserver", "-CAfile", path.join(dir, "ca.pem"), path.join(dir, "leaf.pem")]);
      assert.equal(v.code, 0, v.stdout + v.stderr);
    }
    assert.equal(signerFallbacks.count, fallbacks, "both went through the DER writer");
  });

  it("a subject the DER writer does not take is signed by @peculiar/x509, with the same record fields", async () => {
    const ca = await loadedCa("ca");
    const spki = await subtle.exportKey("spki", (await generateKeyPair("ECDSA-P256")).publicKey);
    const fallbacks = signerFallbacks.count;
    const s = await sign(ca, { owner: "svc", subject: [{ O: ["nödecert"] }, { CN: ["svc"] }], spki, kind: "client", lifetimeMs: 86_400_000 }, new Date(), random);
    assert.equal(signerFallbacks.count, fallbacks + 1);
    const info = certificateInfo(s.chainPem);
    assert.equal(s.record.serial, info.serial);
    assert.equal(s.record.fingerprint256, info.fingerprint256);
    assert.deepEqual(info.subjectO, ["nödecert"]);
  });
});
