import { strict as assert } from "node:assert";
import { decide, type DecisionInput } from "../../src/agent/decision.js";
import { createSelfSignedCa, issueLeaf } from "../../src/pki/certificate.js";
import { createNodeCsr, nodeSubject, parseCsr, type CertKind } from "../../src/pki/csr.js";
import { exportPrivateKeyPem, generateKeyPair, type KeyAlgorithm } from "../../src/pki/keys.js";
import { FakeClock, random } from "../support/helpers.js";
import { splitSans } from "../../src/pki/names.js";

describe("agent/decision: ok, renew or urgent, with a reason", () => {
  const clock = new FakeClock();
  const DAY = 86_400_000;
  let ca: { pem: string; issuer: { certPem: string; privateKey: CryptoKey; algorithm: "ECDSA-P256" } };
  let otherCa: typeof ca;

  before(async () => {
    const mk = async (cn: string) => {
      const k = await generateKeyPair("ECDSA-P256");
      const pem = await createSelfSignedCa({ commonName: cn, keys: k, now: clock.now(), lifetimeMs: 3650 * DAY, random });
      return { pem, issuer: { certPem: pem, privateKey: k.privateKey, algorithm: "ECDSA-P256" as const } };
    };
    ca = await mk("ca");
    otherCa = await mk("other");
  });

  async function pair(o: { kind?: CertKind; node?: string; sans?: string[]; by?: typeof ca; alg?: KeyAlgorithm; wrongKey?: boolean } = {}) {
    const kind = o.kind ?? "serving";
    const keys = await generateKeyPair(o.alg ?? "ECDSA-P256");
    const spki = (await parseCsr(await createNodeCsr({ kind, nodeName: "n1", keys, sans: ["n1"] }))).spki;
    const leaf = await issueLeaf({ issuer: (o.by ?? ca).issuer, subject: nodeSubject(o.node ?? "n1"), spki, kind, sans: splitSans(o.sans ?? ["n1", "10.0.0.1"]), now: clock.now(), lifetimeMs: 100 * DAY, random });
    const keyPem = await exportPrivateKeyPem((o.wrongKey ? await generateKeyPair("ECDSA-P256") : keys).privateKey);
    return leaf.pem + keyPem;
  }

  const input = (pem: string | undefined, over: Partial<DecisionInput> = {}): DecisionInput => ({
    kind: "serving",
    pem,
    now: clock.now(),
    renewAt: (nb, na) => new Date(nb.getTime() + 0.8 * (na.getTime() - nb.getTime())),
    nodeName: "n1",
    servingSans: ["n1", "10.0.0.1"],
    keyAlgorithm: "ECDSA-P256",
    trustBundlePem: ca.pem,
    ...over,
  });

  it("ok before the deadline, renew at it", async () => {
    const pem = await pair();
    const ok = decide(input(pem));
    assert.equal(ok.action, "ok");
    assert.match(ok.reason, /valid until .* renews at/);
    const due = decide(input(pem, { now: new Date(clock.t + 81 * DAY) }));
    assert.equal(due.action, "renew");
    assert.match(due.reason, /renewal deadline .* reached/);
  });

  const urgent = async (pem: string | undefined, over: Partial<DecisionInput>, re: RegExp) => {
    const d = decide(input(pem, over));
    assert.equal(d.action, "urgent", d.reason);
    assert.match(d.reason, re);
  };

  it("urgent: missing", () => urgent(undefined, {}, /certificate is missing/));
  it("urgent: unreadable", () => urgent("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", {}, /unreadable/));
  it("urgent: expired", async () => urgent(await pair(), { now: new Date(clock.t + 101 * DAY) }, /expired at/));
  it("urgent: key does not match", async () => urgent(await pair({ wrongKey: true }), {}, /private key does not match/));
  it("urgent: subject changed", async () => urgent(await pair({ node: "n2" }), {}, /subject changed/));
  it("urgent: serving SANs no longer cover a new address", async () => urgent(await pair(), { servingSans: ["n1", "10.0.0.1", "10.0.0.2"] }, /no longer cover .* missing 10.0.0.2/));
  it("urgent: issuer not in the current trust bundle", async () => urgent(await pair({ by: otherCa }), {}, /issuer is not in the current trust bundle/));
  it("urgent: key algorithm differs from configured policy", async () => urgent(await pair({ alg: "ECDSA-P384" }), {}, /key is ECDSA P-384, the configured key algorithm is ECDSA-P256/));
  it("renew (not urgent): the certificate lists an address the node no longer has", async () => {
    const d = decide(input(await pair({ sans: ["n1", "10.0.0.1", "10.0.0.9"] })));
    assert.equal(d.action, "renew");
    assert.match(d.reason, /no longer has: 10.0.0.9/);
  });
  it("client certificates are not checked against serving SANs", async () => {
    assert.equal(decide(input(await pair({ kind: "client", sans: [] }), { kind: "client" })).action, "ok");
  });
  it("a file that cannot be read is coded by why: permission-denied for EACCES/EPERM, unreadable otherwise; never missing", () => {
    const eacces = decide(input(undefined, { readError: "cannot read x: EACCES: permission denied", readErrno: "EACCES" }));
    assert.equal(eacces.code, "permission-denied");
    assert.equal(eacces.action, "urgent");
    assert.match(eacces.reason, /certificate cannot be read: cannot read x: EACCES/);
    assert.equal(decide(input(undefined, { readError: "cannot read x: EPERM", readErrno: "EPERM" })).code, "permission-denied");
    assert.equal(decide(input(undefined, { readError: "cannot read x: EISDIR", readErrno: "EISDIR" })).code, "unreadable");
    assert.equal(decide(input(undefined, { readError: "cannot read x: EIO" })).code, "unreadable");
  });
});
