// When the server re-issues its own TLS and admin certificates: the pure decision.
import { strict as assert } from "node:assert";
import { createSelfSignedCa, issueLeaf, type Issuer } from "../../../src/pki/certificate.js";
import { exportPrivateKeyPem, generateKeyPair } from "../../../src/pki/keys.js";
import { decideServiceCert, leafSerial, RENEW_AFTER_FRACTION, type ServiceCertFacts } from "../../../src/server/ca/service-cert-decision.js";
import { FakeClock, random } from "../../support/helpers.js";
import { splitSans } from "../../../src/pki/names.js";
import { EKU_NODECERT_CONTROL_PLANE, EKU_SERVER_AUTH } from "../../../src/pki/certificate-info.js";

const DAY = 86_400_000;
const YEAR = 365 * DAY;
const SANS = ["localhost", "127.0.0.1", "::1"];

async function makeCa(now: Date, lifetimeMs = 10 * YEAR, commonName = "test-ca"): Promise<Issuer> {
  const keys = await generateKeyPair("ECDSA-P256");
  const certPem = await createSelfSignedCa({ commonName, keys, now, lifetimeMs, random });
  return { certPem, privateKey: keys.privateKey, algorithm: keys.algorithm };
}

async function makeLeaf(issuer: Issuer, now: Date, o: { sans?: string[]; lifetimeMs?: number } = {}): Promise<{ certPem: string; keyPem: string }> {
  const keys = await generateKeyPair("ECDSA-P256");
  const spki = await crypto.subtle.exportKey("spki", keys.publicKey);
  const leaf = await issueLeaf({ issuer, subject: [{ CN: ["nodecert-server"] }], spki, kind: "server", sans: splitSans(o.sans ?? SANS), now, lifetimeMs: o.lifetimeMs ?? YEAR, random });
  return { certPem: leaf.pem, keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

describe("server certificates: when to re-issue (decideServiceCert)", () => {
  const clock = new FakeClock();
  let ca: Issuer;
  let leaf: { certPem: string; keyPem: string };
  const facts = (over: Partial<ServiceCertFacts> = {}): ServiceCertFacts => ({ ...leaf, signerCertPem: ca.certPem, sans: SANS, recorded: true, now: clock.now(), ...over });
  const at = (ms: number) => new Date(clock.t + ms);

  before(async () => {
    ca = await makeCa(clock.now());
    leaf = await makeLeaf(ca, clock.now());
  });

  it("keeps a fresh certificate and says when it will renew it (after 2/3 of its lifetime)", () => {
    const d = decideServiceCert(facts());
    assert.equal(d.action, "keep");
    if (d.action !== "keep") return;
    assert.equal(d.serial, leafSerial(leaf.certPem));
    assert.equal(d.warning, undefined);
    const lifetime = d.notAfter.getTime() - (clock.t - 5 * 60_000);
    assert.ok(Math.abs(d.renewAt.getTime() - (clock.t - 5 * 60_000 + lifetime * RENEW_AFTER_FRACTION)) < 2000);
  });

  it("keeps it just before two thirds of the lifetime, re-issues just after", () => {
    assert.equal(decideServiceCert(facts({ now: at(243 * DAY) })).action, "keep");
    const d = decideServiceCert(facts({ now: at(244 * DAY) }));
    assert.equal(d.action, "reissue");
    assert.match(d.action === "reissue" ? d.reason : "", /two thirds of its lifetime have passed \(renew after .*, expires 2027-06-01T/);
  });

  it("re-issues an expired certificate, and one that is not valid yet (clock went back)", () => {
    const expired = decideServiceCert(facts({ now: at(400 * DAY) }));
    assert.deepEqual(expired.action, "reissue");
    assert.match(expired.action === "reissue" ? expired.reason : "", /it expired at 2027-06-01T/);
    const early = decideServiceCert(facts({ now: at(-DAY) }));
    assert.match(early.action === "reissue" ? early.reason : "", /not valid until .*did the clock go back/);
  });

  it("re-issues a TLS certificate whose SANs differ from server.yaml; IPv6 spellings and order do not count", () => {
    assert.equal(decideServiceCert(facts({ sans: ["0:0:0:0:0:0:0:1", "LOCALHOST", "127.0.0.1"] })).action, "keep");
    const d = decideServiceCert(facts({ sans: [...SANS, "cp.example.internal"] }));
    assert.equal(d.action, "reissue");
    assert.match(d.action === "reissue" ? d.reason : "", /its SANs are DNS\[localhost\] IP\[127\.0\.0\.1,::1\], server.yaml sans ask for DNS\[cp.example.internal,localhost\] IP\[127\.0\.0\.1,::1\]/);
  });

  it("re-issues a TLS certificate that lacks the control-plane identity, and names the missing usage", async () => {
    const keys = await generateKeyPair("ECDSA-P256");
    const spki = await crypto.subtle.exportKey("spki", keys.publicKey);
    const plain = await issueLeaf({ issuer: ca, subject: [{ CN: ["nodecert-server"] }], spki, kind: "serving", sans: splitSans(SANS), now: clock.now(), lifetimeMs: YEAR, random });
    const want = [EKU_SERVER_AUTH, EKU_NODECERT_CONTROL_PLANE];
    const d = decideServiceCert(facts({ certPem: plain.pem, keyPem: await exportPrivateKeyPem(keys.privateKey), extendedKeyUsages: want }));
    assert.equal(d.action, "reissue");
    assert.match(d.action === "reissue" ? d.reason : "", /it lacks the extended key usage nodecert control-plane \(2\.25\.\d+\) \(agents and 'nodecert join' refuse a control plane without it\)/);
    assert.equal(decideServiceCert(facts({ extendedKeyUsages: want })).action, "keep", "the server's own kind carries it");
  });

  it("does not compare SANs for the admin certificate (none asked for)", async () => {
    assert.equal(decideServiceCert(facts({ sans: undefined })).action, "keep");
  });

  it("re-issues a certificate the current signer did not sign (CA rotation switched, or files from elsewhere)", async () => {
    const other = await makeCa(clock.now(), 10 * YEAR, "other-ca");
    const d = decideServiceCert(facts({ signerCertPem: other.certPem }));
    assert.equal(d.action, "reissue");
    assert.match(d.action === "reissue" ? d.reason : "", /not signed by the current CA: its issuer is "CN=test-ca", the CA that signs now is "CN=other-ca"/);
  });

  it("re-issues when key and certificate do not match (a crash between the two writes)", async () => {
    const stranger = await makeLeaf(ca, clock.now());
    const d = decideServiceCert(facts({ keyPem: stranger.keyPem }));
    assert.equal(d.action, "reissue");
    assert.match(d.action === "reissue" ? d.reason : "", /the key file does not belong to the certificate/);
    assert.doesNotMatch(d.action === "reissue" ? d.reason : "", /PRIVATE KEY/);
  });

  it("re-issues a missing or unreadable certificate or key, and one missing from the certificate record", () => {
    assert.deepEqual(decideServiceCert(facts({ certPem: undefined })), { action: "reissue", reason: "the certificate file is missing" });
    assert.deepEqual(decideServiceCert(facts({ keyPem: undefined })), { action: "reissue", reason: "the key file is missing" });
    assert.deepEqual(decideServiceCert(facts({ certPem: "garbage\n" })), { action: "reissue", reason: "the certificate file holds no certificate" });
    assert.equal(leafSerial("garbage"), undefined);
    const d = decideServiceCert(facts({ recorded: false }));
    assert.match(d.action === "reissue" ? d.reason : "", new RegExp(`serial ${leafSerial(leaf.certPem)} is not in the server's certificate record`));
    assert.equal(decideServiceCert(facts({ recorded: undefined })).action, "keep");
  });

  it("lists every problem at once", () => {
    const d = decideServiceCert(facts({ now: at(400 * DAY), sans: ["x.example"], recorded: false }));
    assert.equal(d.action === "reissue" ? d.reason.split("; ").length : 0, 3);
  });

  it("does not churn when the CA's own expiry caps the certificate: keeps it and says to rotate the CA", async () => {
    const shortCa = await makeCa(clock.now(), 90 * DAY);
    const capped = await makeLeaf(shortCa, clock.now()); // asked for a year, got the CA's 90 days
    const f = { ...capped, signerCertPem: shortCa.certPem, sans: SANS, recorded: true };
    const d = decideServiceCert({ ...f, now: at(70 * DAY) });
    assert.equal(d.action, "keep");
    assert.match(d.action === "keep" ? d.warning ?? "" : "", /cannot be renewed past that: rotate the CA \('nodecert ca rotate'\)/);
    const dead = decideServiceCert({ ...f, now: at(91 * DAY), sans: ["x.example"] });
    assert.equal(dead.action, "keep", "an expired CA signs nothing useful: no re-issue every hour");
    assert.match(dead.action === "keep" ? dead.warning ?? "" : "", /the CA expired at .*rotate the CA/);
    assert.equal(decideServiceCert({ ...f, certPem: undefined, now: at(91 * DAY) }).action, "reissue", "a missing file is still replaced");
  });
});
