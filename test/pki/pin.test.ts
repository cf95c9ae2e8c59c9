import { strict as assert } from "node:assert";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { certificatePin, normalizePin } from "../../src/pki/pin.js";
import { createSelfSignedCa } from "../../src/pki/certificate.js";
import { generateKeyPair, type KeyAlgorithm } from "../../src/pki/keys.js";
import { random, requireTool, run, tempDir } from "../support/helpers.js";

describe("pki/pin", () => {
  for (const alg of ["ECDSA-P256", "RSA-2048"] as KeyAlgorithm[]) {
    it(`matches openssl's SPKI SHA-256 (kubeadm's pin) for a ${alg} CA`, async function () {
      requireTool(this, "openssl");
      const keys = await generateKeyPair(alg);
      const pem = await createSelfSignedCa({ commonName: "pin-test", keys, now: new Date(), lifetimeMs: 86_400_000, random });
      const file = path.join(tempDir(), "ca.crt");
      writeFileSync(file, pem);
      const r = await run("sh", ["-c", `openssl x509 -in ${file} -pubkey -noout | openssl pkey -pubin -outform der | sha256sum | cut -d' ' -f1`]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(certificatePin(pem), `sha256:${r.stdout.trim()}`);
    });
  }

  it("accepts upper-case pins and rejects malformed ones with guidance", () => {
    const hex = "a".repeat(64);
    assert.equal(normalizePin(`SHA256:${hex.toUpperCase()}`), `sha256:${hex}`);
    assert.throws(() => normalizePin("sha256:abc"), /expected sha256:<64 hex digits>/);
    assert.throws(() => normalizePin(hex), /invalid CA pin/);
  });
});
