import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { seal, unseal } from "../../../src/server/ca/key-at-rest.js";

describe("server/key-at-rest: AES-256-GCM sealing of the CA key", () => {
  const kek = randomBytes(32);
  const secret = Buffer.from("-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n");

  it("round-trips and never stores the plaintext", () => {
    const s = seal(secret, kek);
    assert.equal(s.alg, "AES-256-GCM");
    assert.ok(!JSON.stringify(s).includes("PRIVATE KEY"));
    assert.deepEqual(unseal(s, kek), secret);
  });

  it("refuses a wrong key-encryption key and tampered ciphertext", () => {
    const s = seal(secret, kek);
    assert.throws(() => unseal(s, randomBytes(32)), /key-encryption key does not match/);
    const ct = Buffer.from(s.ct, "base64");
    ct[0] ^= 1;
    assert.throws(() => unseal({ ...s, ct: ct.toString("base64") }, kek), /cannot decrypt/);
    assert.throws(() => unseal(s, randomBytes(16)), /must be 32 bytes/);
  });
});
