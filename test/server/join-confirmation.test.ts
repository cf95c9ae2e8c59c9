// A join is final only once the node proves it installed the result (its first renewal or its
// channel connection). Until then, within a bounded window, the same node may retry it with the
// same token and the same key: a node that could not install what it got is not stranded behind a
// spent token (bound) or its own half-made node record (unbound).
import { strict as assert } from "node:assert";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { join } from "../../src/agent/join.js";
import { joinKeysFile } from "../../src/agent/join-keys.js";
import { nodeIdentity } from "../../src/agent/identity.js";
import { nodeLayout } from "../../src/agent/layout.js";
import { requestJson } from "../../src/platform/https-client.js";
import { createNodeCsr } from "../../src/pki/csr.js";
import { exportPrivateKeyPem, generateKeyPair, type KeyPair } from "../../src/pki/keys.js";
import { certificateInfo } from "../../src/pki/certificate-info.js";
import { PROTOCOL_VERSION } from "../../src/protocol/messages.js";
import { JOIN_RETRY_WINDOW_MS } from "../../src/server/join-confirmation.js";
import { FakeClock, quietLogger, startServer, tempDir, type TestServer } from "../support/helpers.js";
import { nodeFacts, openChannel, renewRaw } from "../support/node-client.js";

describe("server/join-confirmation: an unconfirmed join may be retried with the same token and key", function () {
  this.timeout(60_000);
  let server: TestServer;
  const clock = new FakeClock(Date.now());
  before(async () => {
    server = await startServer({ clock });
  });
  after(async () => server?.close());

  async function agentJoin(root: string, node: string, token: string) {
    const identity = await nodeIdentity({ nodeName: node, addresses: { includeLoopback: true, includeLinkLocal: false, extra: [], only: ["127.0.0.1"] }, facts: async () => ({}) });
    return join({ server: server.url, token, caCertHash: server.pin, layout: nodeLayout(root), identity, keyAlgorithm: "ECDSA-P256", now: clock.now, logger: quietLogger() });
  }

  for (const bound of [true, false]) {
    it(`${bound ? "bound single-use" : "unbound"} token: the install fails after the server committed; the agent retries with the same key and joins`, async () => {
      const node = `retry-${bound ? "bound" : "unbound"}`;
      const root = path.join(tempDir(), node);
      const layout = nodeLayout(root);
      const token = await server.createToken(bound ? { node } : {});
      // A file where the kubelet's pki directory goes: the install fails after the response came.
      mkdirSync(path.dirname(layout.pkiDir), { recursive: true });
      writeFileSync(layout.pkiDir, "not a directory");
      await assert.rejects(agentJoin(root, node, token), /EEXIST|ENOTDIR/);
      assert.ok(await server.store.getNode(node), "the server committed the join");
      assert.equal((await server.store.getToken(token.split(".")[0]))!.usesLeft, 0, "its single use is spent");
      assert.ok(existsSync(joinKeysFile(layout)), "the agent kept the join's keys");
      rmSync(layout.pkiDir);
      const state = await agentJoin(root, node, token);
      assert.equal(state.nodeName, node);
      assert.equal(existsSync(joinKeysFile(layout)), false, "kept keys removed once installed");
      const certs = (await server.store.listCertificates(node)).filter((c) => c.kind === "client");
      assert.equal(certs.length, 2);
      const audit = await server.store.listAudit();
      assert.ok(audit.some((e) => e.type === "join.retried" && e.node === node));
    });
  }

  async function keys() {
    const client = await generateKeyPair("ECDSA-P256");
    const serving = await generateKeyPair("ECDSA-P256");
    return { client, serving, clientPem: await exportPrivateKeyPem(client.privateKey) };
  }
  async function joinWith(node: string, token: string, k: { client: KeyPair; serving: KeyPair; clientPem: string }) {
    const res = await requestJson(`${server.url}/v1/join`, {
      body: { v: PROTOCOL_VERSION, nodeName: node, facts: nodeFacts(node), csrs: { client: await createNodeCsr({ kind: "client", nodeName: node, keys: k.client }), serving: await createNodeCsr({ kind: "serving", nodeName: node, keys: k.serving, sans: [node, "127.0.0.1"] }) } },
      headers: { authorization: `Bearer ${token}` },
      tls: { ca: server.authority.trustBundle },
    });
    const chain = (res.body as { certificates?: { client?: string } })?.certificates?.client;
    return { ...res, credential: chain ? { pem: chain.trimEnd() + "\n" + k.clientPem, serial: certificateInfo(chain).serial } : undefined };
  }

  it("a retry with another key, or for another node, is refused as token-used with the reason", async () => {
    const token = await server.createToken();
    const k = await keys();
    assert.equal((await joinWith("keyed", token, k)).status, 200);
    const other = await joinWith("keyed", token, await keys());
    assert.equal(other.status, 401);
    assert.match(JSON.stringify(other.body), /token-used.*same client key/);
    const thief = await joinWith("someone-else", token, k);
    assert.equal(thief.status, 401);
    assert.match(JSON.stringify(thief.body), /only that node may retry it/);
    assert.equal((await joinWith("keyed", token, k)).status, 200, "the same node and key still may");
  });

  it("once the node renewed (or connected its channel) the join is final: a retry is refused", async () => {
    for (const proof of ["renewal", "channel"] as const) {
      const node = `final-${proof}`;
      const token = await server.createToken({ node });
      const k = await keys();
      const first = await joinWith(node, token, k);
      assert.equal(first.status, 200);
      if (proof === "renewal") assert.equal((await renewRaw(server, node, first.credential!)).status, 200);
      else {
        const ch = await openChannel(server, first.credential!);
        assert.equal(ch.status, 101);
        const end = Date.now() + 10_000;
        while (!(await server.store.getNode(node))?.confirmedSerial && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
        ch.ws?.close();
      }
      const again = await joinWith(node, token, k);
      assert.equal(again.status, 401, proof);
      assert.match(JSON.stringify(again.body), /proved it installed its certificates \(the join is final\)/);
    }
  });

  it("the window is bounded: an hour after the join the spent token is just spent", async () => {
    const node = "late";
    const token = await server.createToken({ node, ttlMs: 10 * JOIN_RETRY_WINDOW_MS });
    const k = await keys();
    assert.equal((await joinWith(node, token, k)).status, 200);
    clock.advance(JOIN_RETRY_WINDOW_MS + 1000);
    try {
      const late = await joinWith(node, token, k);
      assert.equal(late.status, 401);
      assert.match(JSON.stringify(late.body), /has already been used/);
    } finally {
      clock.advance(-(JOIN_RETRY_WINDOW_MS + 1000));
    }
  });
});
