import { strict as assert } from "node:assert";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { createNodeCsr, parseCsr } from "../../src/pki/csr.js";
import { generateKeyPair, type KeyAlgorithm } from "../../src/pki/keys.js";
import { EKU_CLIENT_AUTH, EKU_SERVER_AUTH } from "../../src/pki/certificate-info.js";
import { requireTool, run, tempDir } from "../support/helpers.js";

const ALGS: { alg: KeyAlgorithm; openssl: RegExp }[] = [
  { alg: "ECDSA-P256", openssl: /id-ecPublicKey[\s\S]*P-256/ },
  { alg: "ECDSA-P384", openssl: /id-ecPublicKey[\s\S]*P-384/ },
  { alg: "RSA-2048", openssl: /rsaEncryption[\s\S]*2048 bit/ },
  { alg: "Ed25519", openssl: /ED25519/ },
];

describe("pki/csr", () => {
  for (const { alg, openssl } of ALGS) {
    it(`builds kubelet client and serving CSRs with ${alg} that openssl verifies`, async function () {
      requireTool(this, "openssl");
      const keys = await generateKeyPair(alg);
      const dir = tempDir();
      const client = await createNodeCsr({ kind: "client", nodeName: "worker-1", keys });
      const serving = await createNodeCsr({ kind: "serving", nodeName: "worker-1", keys, sans: ["worker-1", "10.0.0.7", "fd00::7"] });
      for (const [name, pem] of [["client", client], ["serving", serving]]) {
        const f = path.join(dir, `${name}.csr`);
        writeFileSync(f, pem);
        const r = await run("openssl", ["req", "-in", f, "-verify", "-noout", "-text"]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr + r.stdout, /verify OK|Certificate request self-signature verify OK/);
        assert.match(r.stdout, /Subject: O\s*=\s*system:nodes, CN\s*=\s*system:node:worker-1/);
        assert.match(r.stdout, openssl);
      }
      const pc = await parseCsr(client);
      assert.deepEqual(pc.subjectCN, ["system:node:worker-1"]);
      assert.deepEqual(pc.subjectO, ["system:nodes"]);
      assert.deepEqual(pc.sans, { dns: [], ip: [] });
      assert.deepEqual(pc.extendedKeyUsages, [EKU_CLIENT_AUTH]);
      assert.equal(pc.keyAlgorithm, alg);
      assert.equal(pc.signatureValid, true);
      const ps = await parseCsr(serving);
      assert.deepEqual(ps.sans, { dns: ["worker-1"], ip: ["10.0.0.7", "fd00::7"] });
      assert.deepEqual(ps.extendedKeyUsages, [EKU_SERVER_AUTH]);
    });
  }

  it("reports a tampered CSR's signature as invalid", async () => {
    const keys = await generateKeyPair("ECDSA-P256");
    const other = await generateKeyPair("ECDSA-P256");
    const a = await createNodeCsr({ kind: "client", nodeName: "a", keys });
    const b = await createNodeCsr({ kind: "client", nodeName: "b", keys: other });
    // Splice b's signature onto a's request body: structurally valid, cryptographically wrong.
    const { x509 } = await import("../../src/crypto/provider.js");
    const { AsnConvert } = await import("@peculiar/asn1-schema");
    const { CertificationRequest } = await import("@peculiar/asn1-csr");
    const ra = AsnConvert.parse(new x509.Pkcs10CertificateRequest(a).rawData, CertificationRequest);
    const rb = AsnConvert.parse(new x509.Pkcs10CertificateRequest(b).rawData, CertificationRequest);
    ra.signature = rb.signature;
    const forged = new x509.Pkcs10CertificateRequest(AsnConvert.serialize(ra)).toString("pem");
    assert.equal((await parseCsr(forged)).signatureValid, false);
  });

  it("rejects something that is not a CSR with a clear error", async () => {
    await assert.rejects(parseCsr("-----BEGIN CERTIFICATE REQUEST-----\nZm9v\n-----END CERTIFICATE REQUEST-----\n"), /not a valid PKCS#10 request/);
  });
});
