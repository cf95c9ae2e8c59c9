// The fast CSR reader (pki/csr-der.ts) returns what parseCsr (@peculiar/x509) returns: for the
// agent's own CSRs and for the openssl CLI's; and for hostile ones (byte mutations, an RSA exponent
// of 1, an EC point off the curve) parseCsrFast ends exactly where parseCsr does (the same fields, or
// an error), since whatever the DER reader does not read exactly goes to parseCsr.
import { strict as assert } from "node:assert";
import { createNodeCsr, parseCsr, type ParsedCsr } from "../../src/pki/csr.js";
import { parseCsrFast, readCsrDer } from "../../src/pki/csr-der.js";
import { generateKeyPair, type KeyAlgorithm } from "../../src/pki/keys.js";
import { decodePem } from "../../src/pki/pem.js";
import { opensslCsr, pem, withPointOffCurve, withRsaExponentOne } from "../support/hostile-csr.js";
import { requireTool } from "../support/helpers.js";
import { seeded } from "../../scripts/fuzz-cases.js";

const comparable = (p: ParsedCsr) => ({ ...p, spki: Buffer.from(p.spki).toString("hex") });

async function outcome(f: (pem: string) => Promise<ParsedCsr>, text: string): Promise<unknown> {
  try {
    return comparable(await f(text));
  } catch (e) {
    return { error: (e as Error).message };
  }
}

describe("pki/csr-der: the DER CSR reader matches parseCsr", function () {
  this.timeout(120_000);

  for (const alg of ["ECDSA-P256", "ECDSA-P384", "RSA-2048"] as KeyAlgorithm[]) {
    it(`reads the agent's ${alg} client and serving CSRs itself, with parseCsr's result`, async () => {
      const keys = await generateKeyPair(alg);
      for (const csr of [
        await createNodeCsr({ kind: "client", nodeName: "n1", keys }),
        await createNodeCsr({ kind: "serving", nodeName: "n1.example", keys, sans: ["n1.example", "N1", "10.0.0.7", "fd00::1:0:0:7", "::ffff:192.0.2.1"] }),
      ]) {
        const fast = await readCsrDer(csr);
        assert.ok(fast, "the fast reader took the agent's CSR");
        assert.equal(fast.signatureValid, true);
        assert.deepEqual(comparable(fast), comparable(await parseCsr(csr)));
      }
    });
  }

  it("reads the openssl CLI's CSRs with parseCsr's result (or leaves them to it)", async function () {
    requireTool(this, "openssl");
    for (const genpkey of [["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"], ["-algorithm", "ED25519"]]) {
      for (const kind of ["client", "serving"] as const) {
        const { der } = await opensslCsr({ nodeName: "n2", kind, sans: ["n2", "192.0.2.9"], genpkey });
        const text = pem(der);
        assert.deepEqual(await outcome(parseCsrFast, text), await outcome(parseCsr, text), `${genpkey.join(" ")} ${kind}`);
      }
    }
  });

  it("hostile CSRs (RSA exponent 1, EC point off the curve, a broken signature) end where parseCsr ends", async function () {
    requireTool(this, "openssl");
    const rsa = await opensslCsr({ nodeName: "n3", kind: "client", genpkey: ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"] });
    const ec = await opensslCsr({ nodeName: "n3", kind: "client", genpkey: ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"] });
    const badSig = Buffer.from(ec.der);
    badSig[badSig.length - 5] ^= 0x01;
    for (const der of [withRsaExponentOne(rsa.der, rsa.keyFile), withPointOffCurve(ec.der), badSig]) {
      const text = pem(der);
      assert.deepEqual(await outcome(parseCsrFast, text), await outcome(parseCsr, text));
    }
    assert.equal(((await outcome(parseCsrFast, pem(badSig))) as ParsedCsr).signatureValid, false);
  });

  it("600 seeded byte mutations of a serving CSR: parseCsrFast and parseCsr agree on every one", async () => {
    const keys = await generateKeyPair("ECDSA-P256");
    const base = decodePem(await createNodeCsr({ kind: "serving", nodeName: "n4", keys, sans: ["n4", "10.0.0.4"] }))[0].der;
    const r = seeded(13);
    let fastTook = 0;
    for (let i = 0; i < 600; i++) {
      const der = Buffer.from(base);
      for (let k = 0, n = 1 + Math.floor(r() * 3); k < n; k++) der[Math.floor(r() * der.length)] = Math.floor(r() * 256);
      const text = pem(der);
      if (await readCsrDer(text)) fastTook++;
      assert.deepEqual(await outcome(parseCsrFast, text), await outcome(parseCsr, text), `mutation ${i}: ${der.toString("hex")}`);
    }
    // The comparison means something only if the fast reader really read some of them.
    assert.ok(fastTook > 50, `the fast reader read ${fastTook} of 600`);
  });
});
