// One node authentication for POST /v1/renew and the fleet channel (server/node-auth.ts): the same
// subject and EKU checks refuse the same certificates on both paths, and a keep-alive connection's
// client chain is verified once per connection, not per request.
import { strict as assert } from "node:assert";
import https from "node:https";
import { after, before, describe, it } from "mocha";
import { startServer, FakeClock, random, type TestServer } from "../support/helpers.js";
import { joinRaw, nodeFacts, openChannel, type NodeCredential } from "../support/node-client.js";
import { issueLeaf } from "../../src/pki/certificate.js";
import { createNodeCsr } from "../../src/pki/csr.js";
import { exportPrivateKeyPem, generateKeyPair } from "../../src/pki/keys.js";
import { certificateInfo } from "../../src/pki/certificate-info.js";
import { NODE_ORG } from "../../src/pki/names.js";
import { peerVerifications } from "../../src/server/peer.js";
import { PROTOCOL_VERSION } from "../../src/protocol/messages.js";

function post(agent: https.Agent, server: TestServer, path: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const s = JSON.stringify(body);
    const req = https.request({ method: "POST", host: "127.0.0.1", port: server.port, path, agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(s) } }, (res) => {
      let d = "";
      res.setEncoding("utf8");
      res.on("data", (x) => (d += x));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(d) as Record<string, unknown> }));
    });
    req.on("error", reject);
    req.end(s);
  });
}

describe("server/node-auth: one node authentication for renewal and the channel", function () {
  this.timeout(60_000);
  const clock = new FakeClock(Date.now());
  let server: TestServer;
  let cred: NodeCredential;
  const name = "na-1";

  before(async () => {
    server = await startServer({ clock });
    const j = await joinRaw(server, name, await server.createToken());
    assert.equal(j.status, 200, JSON.stringify(j.body));
    cred = j.credential!;
  });
  after(() => server?.close());

  /** A certificate the CA signed for this node's name with a subject or usage a node must not have. */
  async function oddCertificate(subject: { O: readonly string[] }, kind: "client" | "serving"): Promise<NodeCredential> {
    const keys = await generateKeyPair("ECDSA-P256");
    const spki = Buffer.from(await crypto.subtle.exportKey("spki", keys.publicKey));
    const leaf = await issueLeaf({ issuer: server.ca.issuer, subject: [{ O: [...subject.O] }, { CN: [`system:node:${name}`] }], spki: spki.buffer.slice(spki.byteOffset, spki.byteOffset + spki.byteLength), kind, sans: kind === "serving" ? { dns: [], ip: ["127.0.0.1"] } : undefined, now: clock.now(), lifetimeMs: 86_400_000, random });
    return { pem: leaf.pem + (await exportPrivateKeyPem(keys.privateKey)), serial: leaf.serial };
  }

  for (const [what, subject, kind] of [
    ["two O values (system:nodes + system:masters)", { O: [NODE_ORG, "system:masters"] }, "client"],
    ["a serverAuth-only certificate", { O: [NODE_ORG] }, "serving"],
  ] as const) {
    it(`${what}: refused as not-a-node by POST /v1/renew and by the channel alike`, async () => {
      const odd = await oddCertificate(subject, kind);
      const agent = new https.Agent({ ca: server.authority.trustBundle, cert: odd.pem, key: odd.pem, minVersion: "TLSv1.3" });
      const csr = await createNodeCsr({ kind: "client", nodeName: name, keys: await generateKeyPair("ECDSA-P256") });
      const r = await post(agent, server, "/v1/renew", { v: PROTOCOL_VERSION, facts: nodeFacts(name), csrs: { client: csr } });
      agent.destroy();
      assert.equal(r.status, 403);
      assert.equal(r.body.error, "not-a-node");
      const ch = await openChannel(server, odd);
      assert.equal(ch.status, 403);
      assert.equal((JSON.parse(ch.body) as { rule: string }).rule, "not-a-node");
      // The node's own certificate still opens the channel.
      const ok = await openChannel(server, cred);
      assert.equal(ok.status, 101);
      ok.ws!.close();
    });
  }

  it("renewals on one keep-alive connection verify its client chain once; a new connection verifies again", async () => {
    const agent = new https.Agent({ ca: server.authority.trustBundle, cert: cred.pem, key: cred.pem, minVersion: "TLSv1.3", keepAlive: true, maxSockets: 1 });
    const keys = await generateKeyPair("ECDSA-P256");
    const body = { v: PROTOCOL_VERSION, facts: nodeFacts(name), csrs: { client: await createNodeCsr({ kind: "client", nodeName: name, keys }) } };
    const before = peerVerifications.count;
    const serials = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const r = await post(agent, server, "/v1/renew", body);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      serials.add(certificateInfo((r.body.certificates as { client: string }).client).serial);
    }
    assert.equal(serials.size, 5, "each renewal signed a new certificate");
    assert.equal(peerVerifications.count - before, 1, "one chain verification for five requests on one connection");
    agent.destroy();
    const fresh = new https.Agent({ ca: server.authority.trustBundle, cert: cred.pem, key: cred.pem, minVersion: "TLSv1.3", keepAlive: true, maxSockets: 1 });
    assert.equal((await post(fresh, server, "/v1/renew", body)).status, 200);
    assert.equal(peerVerifications.count - before, 2);
    fresh.destroy();
  });

  it("the cached verification does not outlive the certificate: past notAfter the same connection is refused", async () => {
    const agent = new https.Agent({ ca: server.authority.trustBundle, cert: cred.pem, key: cred.pem, minVersion: "TLSv1.3", keepAlive: true, maxSockets: 1 });
    const body = { v: PROTOCOL_VERSION, facts: nodeFacts(name), csrs: { client: await createNodeCsr({ kind: "client", nodeName: name, keys: await generateKeyPair("ECDSA-P256") }) } };
    assert.equal((await post(agent, server, "/v1/renew", body)).status, 200);
    const notAfter = certificateInfo(cred.pem).notAfter.getTime();
    const saved = clock.t;
    clock.t = notAfter + 30 * 86_400_000;
    try {
      const r = await post(agent, server, "/v1/renew", body);
      assert.equal(r.status, 401);
      assert.equal(r.body.error, "certificate-expired");
    } finally {
      clock.t = saved;
      agent.destroy();
    }
  });
});
