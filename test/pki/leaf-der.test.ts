// The fast leaf writer (pki/leaf-der.ts) writes what @peculiar/x509 (issueLeaf) writes: with an
// Ed25519 CA (deterministic signatures) the whole certificate is byte-identical; with ECDSA and RSA
// CAs the signed part (TBSCertificate) is, and the openssl CLI verifies the fast leaf's signature.
import { strict as assert } from "node:assert";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { X509Certificate } from "node:crypto";
import { createSelfSignedCa, issueLeaf, type LeafKind } from "../../src/pki/certificate.js";
import { generateKeyPair, type KeyAlgorithm } from "../../src/pki/keys.js";
import { nodeSubject } from "../../src/pki/csr.js";
import { issueLeafDer, signingContext } from "../../src/pki/leaf-der.js";
import { children, readTlv } from "../../src/pki/der.js";
import { decodePem } from "../../src/pki/pem.js";
import { certificateInfo } from "../../src/pki/certificate-info.js";
import { requireTool, run, tempDir } from "../support/helpers.js";
import { subtle } from "../../src/crypto/provider.js";

/** The same "random" bytes for both writers: serials then compare equal. */
function replay(seed: number[]): (n: number) => Uint8Array {
  return (n) => Uint8Array.from({ length: n }, (_, i) => seed[i % seed.length]);
}

function tbsOf(der: Buffer): Buffer {
  const outer = readTlv(der, 0)!;
  const tbs = children(der, outer)![0];
  return der.subarray(tbs.start, tbs.end);
}

const der = (pem: string) => decodePem(pem)[0].der;
const now = new Date("2026-06-01T12:34:56.789Z");

async function ca(alg: KeyAlgorithm) {
  const keys = await generateKeyPair(alg);
  const certPem = await createSelfSignedCa({ commonName: `ca-${alg}`, keys, now, lifetimeMs: 10 * 365 * 86_400_000, random: replay([7, 1]) });
  return { certPem, privateKey: keys.privateKey, algorithm: alg };
}

async function spkiOf(alg: KeyAlgorithm): Promise<ArrayBuffer> {
  return subtle.exportKey("spki", (await generateKeyPair(alg)).publicKey);
}

const cases: { kind: LeafKind; subjectAlg: KeyAlgorithm; seed: number[] }[] = [
  { kind: "client", subjectAlg: "ECDSA-P256", seed: [0xa3, 0x11] }, // high bit: a 0x00 goes in front
  { kind: "serving", subjectAlg: "ECDSA-P256", seed: [0x00, 0x00, 0x05] }, // leading zero bytes are stripped
  { kind: "serving", subjectAlg: "RSA-2048", seed: [0x42] }, // keyEncipherment too
  { kind: "server", subjectAlg: "ECDSA-P384", seed: [0x7f, 0xff] },
  { kind: "admin", subjectAlg: "Ed25519", seed: [0x01] },
];
const sans = { dns: ["n1.example", "node-1"], ip: ["10.0.0.1", "fd00::1", "2001:db8:0:0:1::ff"] };

describe("pki/leaf-der: the DER leaf writer matches @peculiar/x509", function () {
  this.timeout(60_000);

  it("with an Ed25519 CA every certificate is byte-identical to issueLeaf's", async () => {
    const issuer = await ca("Ed25519");
    const ctx = signingContext(issuer);
    for (const c of cases) {
      const spki = await spkiOf(c.subjectAlg);
      const p = { subject: nodeSubject("n1"), spki, kind: c.kind, sans: c.kind === "client" || c.kind === "admin" ? undefined : sans, now, lifetimeMs: 365 * 86_400_000 };
      const slow = await issueLeaf({ ...p, issuer, random: replay(c.seed) });
      const fast = (await issueLeafDer({ ...p, ctx, random: replay(c.seed) }))!;
      assert.ok(fast, `${c.kind} ${c.subjectAlg}: the fast writer took it`);
      assert.equal(fast.pem, slow.pem, `${c.kind} ${c.subjectAlg}`);
      assert.equal(fast.serial, slow.serial);
      assert.equal(fast.notBefore.getTime(), slow.notBefore.getTime());
      assert.equal(fast.notAfter.getTime(), slow.notAfter.getTime());
      assert.equal(fast.fingerprint256, certificateInfo(slow.pem).fingerprint256);
    }
  });

  for (const caAlg of ["ECDSA-P256", "ECDSA-P384", "RSA-2048"] as KeyAlgorithm[]) {
    it(`with a ${caAlg} CA the signed part is identical and openssl verifies the fast leaf`, async function () {
      requireTool(this, "openssl");
      const issuer = await ca(caAlg);
      const ctx = signingContext(issuer);
      const dir = tempDir();
      writeFileSync(path.join(dir, "ca.pem"), issuer.certPem);
      for (const c of cases) {
        const spki = await spkiOf(c.subjectAlg);
        const p = { subject: nodeSubject("n1"), spki, kind: c.kind, sans: c.kind === "serving" || c.kind === "server" ? sans : undefined, now, lifetimeMs: 365 * 86_400_000 };
        const slow = await issueLeaf({ ...p, issuer, random: replay(c.seed) });
        const fast = (await issueLeafDer({ ...p, ctx, random: replay(c.seed) }))!;
        assert.deepEqual(tbsOf(fast.der), tbsOf(der(slow.pem)), `${c.kind} ${c.subjectAlg}`);
        const file = path.join(dir, `leaf-${c.kind}-${c.subjectAlg}.pem`);
        writeFileSync(file, fast.pem);
        // Verified at the leaf's own time (the fixed `now` above), with the usage its kind carries.
        const purpose = c.kind === "serving" || c.kind === "server" ? "sslserver" : "sslclient";
        const r = await run("openssl", ["verify", "-attime", String(Math.floor(now.getTime() / 1000)), "-purpose", purpose, "-CAfile", path.join(dir, "ca.pem"), file]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(r.stdout, /: OK/);
        assert.ok(new X509Certificate(fast.pem).verify(new X509Certificate(issuer.certPem).publicKey));
      }
    });
  }

  it("a subject it cannot write exactly like the library is left to the library (undefined)", async () => {
    const issuer = await ca("ECDSA-P256");
    const ctx = signingContext(issuer);
    const spki = await spkiOf("ECDSA-P256");
    const base = { spki, kind: "client" as const, now, lifetimeMs: 86_400_000, random: replay([1]) };
    assert.equal(await issueLeafDer({ ...base, ctx, subject: [{ O: ["system:nodes"] }, { CN: ["système"] }] }), undefined);
    assert.equal(await issueLeafDer({ ...base, ctx, subject: [{ O: ["a", "b"] }] }), undefined);
    assert.equal(await issueLeafDer({ ...base, ctx, subject: [{ OU: ["x"] }] }), undefined);
  });

  it("a leaf never outlives its CA: notAfter is capped at the CA's", async () => {
    const issuer = await ca("ECDSA-P256");
    const ctx = signingContext(issuer);
    const fast = (await issueLeafDer({ ctx, subject: nodeSubject("n1"), spki: await spkiOf("ECDSA-P256"), kind: "client", now, lifetimeMs: 100 * 365 * 86_400_000, random: replay([9]) }))!;
    assert.equal(fast.notAfter.getTime(), new Date(new X509Certificate(issuer.certPem).validTo).getTime());
  });
});
