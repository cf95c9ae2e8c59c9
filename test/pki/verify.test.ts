import { strict as assert } from "node:assert";
import { createSelfSignedCa, issueLeaf } from "../../src/pki/certificate.js";
import { createNodeCsr, parseCsr, nodeSubject } from "../../src/pki/csr.js";
import { exportPrivateKeyPem, generateKeyPair } from "../../src/pki/keys.js";
import { verifyNodeCertificate, VerificationError } from "../../src/pki/verify.js";
import { FakeClock, random } from "../support/helpers.js";
import { splitSans } from "../../src/pki/names.js";

describe("pki/verify: what an agent checks before installing", () => {
  const clock = new FakeClock();
  let ca: { pem: string; issuer: { certPem: string; privateKey: CryptoKey; algorithm: "ECDSA-P256" } };
  let otherCa: typeof ca;
  let keyPem: string;
  let spki: ArrayBuffer;

  before(async () => {
    const mk = async (cn: string) => {
      const k = await generateKeyPair("ECDSA-P256");
      const pem = await createSelfSignedCa({ commonName: cn, keys: k, now: clock.now(), lifetimeMs: 86_400_000 * 3650, random });
      return { pem, issuer: { certPem: pem, privateKey: k.privateKey, algorithm: "ECDSA-P256" as const } };
    };
    ca = await mk("ca");
    otherCa = await mk("other");
    const keys = await generateKeyPair("ECDSA-P256");
    keyPem = await exportPrivateKeyPem(keys.privateKey);
    spki = (await parseCsr(await createNodeCsr({ kind: "serving", nodeName: "n1", keys, sans: ["n1"] }))).spki;
  });

  const issue = (o: { by?: typeof ca; node?: string; kind?: "client" | "serving"; sans?: string[]; lifetimeMs?: number; spki?: ArrayBuffer }) =>
    issueLeaf({ issuer: (o.by ?? ca).issuer, subject: nodeSubject(o.node ?? "n1"), spki: o.spki ?? spki, kind: o.kind ?? "serving", sans: splitSans(o.sans ?? ["n1", "10.0.0.1"]), now: clock.now(), lifetimeMs: o.lifetimeMs ?? 86_400_000, random });

  const expectProblem = async (leafPem: string, re: RegExp, exp: Partial<Parameters<typeof verifyNodeCertificate>[3]> = {}) => {
    assert.throws(
      () => verifyNodeCertificate(leafPem, keyPem, ca.pem, { kind: "serving", nodeName: "n1", sans: ["n1", "10.0.0.1"], now: clock.now(), ...exp }),
      (e: unknown) => e instanceof VerificationError && re.test(e.message),
    );
  };

  it("accepts a correct certificate", async () => {
    verifyNodeCertificate((await issue({})).pem, keyPem, ca.pem, { kind: "serving", nodeName: "n1", sans: ["10.0.0.1", "n1"], now: clock.now() });
  });
  it("refuses a certificate from another CA", async () => expectProblem((await issue({ by: otherCa })).pem, /does not chain to the trusted CA/));
  it("refuses a certificate for a different key", async () => {
    const other = await generateKeyPair("ECDSA-P256");
    const otherSpki = (await parseCsr(await createNodeCsr({ kind: "client", nodeName: "n1", keys: other }))).spki;
    await expectProblem((await issue({ spki: otherSpki })).pem, /not for this node's private key/);
  });
  it("refuses another node's subject", async () => expectProblem((await issue({ node: "n2" })).pem, /CN is "system:node:n2"/));
  it("refuses SANs other than requested", async () => expectProblem((await issue({ sans: ["n1", "10.0.0.2"] })).pem, /SANs are/));
  it("refuses the wrong usage", async () => expectProblem((await issue({ kind: "client", sans: [] })).pem, /lacks serverAuth/));
  it("refuses an expired certificate", async () => expectProblem((await issue({ lifetimeMs: 1000 })).pem, /expired at/, { now: new Date(clock.t + 3_600_000) }));
});
