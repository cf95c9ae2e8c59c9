// kill -9 of the control plane (`nodecert server run`, its own process) in the middle of
// concurrent renewals: every certificate a client received before the kill is in the database,
// with its renew.issued audit event (group commit answers only after the batch is durable), and
// SQLite's integrity check says ok after the restart.
import { strict as assert } from "node:assert";
import https from "node:https";
import path from "node:path";
import Database from "better-sqlite3";
import { serverProcess, type ServerProcess } from "../support/server-process.js";
import { createNodeCsr } from "../../src/pki/csr.js";
import { exportPrivateKeyPem, generateKeyPair } from "../../src/pki/keys.js";
import { certificateInfo } from "../../src/pki/certificate-info.js";
import { PROTOCOL_VERSION } from "../../src/protocol/messages.js";
import { requireTool, run } from "../support/helpers.js";

const CLIENTS = 16;

function post(o: { port: number; agent: https.Agent; path: string; body: unknown; headers?: Record<string, string>; localAddress?: string }): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const s = JSON.stringify(o.body);
    const req = https.request(
      { method: "POST", host: "127.0.0.1", port: o.port, path: o.path, agent: o.agent, localAddress: o.localAddress, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(s), ...(o.headers ?? {}) } },
      (res) => {
        let d = "";
        res.setEncoding("utf8");
        res.on("data", (x) => (d += x));
        res.on("end", () => {
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(d) as Record<string, unknown> });
          } catch (e) {
            reject(e);
          }
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(s);
  });
}

describe("e2e: kill -9 of the control plane under concurrent renewals", function () {
  this.timeout(300_000);
  let server: ServerProcess;
  after(() => server?.stop());

  it("every certificate a client received is in the database with its audit event; integrity_check ok", async function () {
    requireTool(this, "sqlite3");
    server = await serverProcess();
    await server.start();
    const token = await server.createToken({ uses: CLIENTS });
    const ca = server.trustBundle();
    // Each node has a loopback address of its own: serving SANs are unique per node.
    const nodes = await Promise.all(
      Array.from({ length: CLIENTS }, async (_, i) => {
        const name = `kill-${i}`;
        const address = `127.0.3.${i + 1}`;
        const keys = await generateKeyPair("ECDSA-P256");
        const client = await createNodeCsr({ kind: "client", nodeName: name, keys });
        const serving = await createNodeCsr({ kind: "serving", nodeName: name, keys, sans: [address] });
        return { name, address, keyPem: await exportPrivateKeyPem(keys.privateKey), client, serving, facts: { hostname: name, addresses: [address], agentVersion: "test" } };
      }),
    );
    const agents: https.Agent[] = [];
    for (const n of nodes) {
      const joinAgent = new https.Agent({ ca, minVersion: "TLSv1.3" });
      const j = await post({ port: server.port, agent: joinAgent, path: "/v1/join", localAddress: n.address, headers: { authorization: `Bearer ${token}` }, body: { v: PROTOCOL_VERSION, nodeName: n.name, facts: n.facts, csrs: { client: n.client, serving: n.serving } } });
      joinAgent.destroy();
      assert.equal(j.status, 200, JSON.stringify(j.body));
      const cert = (j.body.certificates as { client: string }).client;
      agents.push(new https.Agent({ ca, cert, key: n.keyPem, minVersion: "TLSv1.3", keepAlive: true, maxSockets: 1, localAddress: n.address } as https.AgentOptions));
    }

    // Renewals (client + serving) on every connection until the server dies under them.
    const received: { node: string; serial: string; kind: string }[] = [];
    let failed = 0;
    let killed = false;
    const killAt = 80 + Math.floor(Math.random() * 40);
    let killing: Promise<void> | undefined;
    await Promise.all(
      nodes.map(async (n, i) => {
        for (;;) {
          try {
            const r = await post({ port: server.port, agent: agents[i], path: "/v1/renew", body: { v: PROTOCOL_VERSION, facts: n.facts, csrs: { client: n.client, serving: n.serving } } });
            assert.equal(r.status, 200, JSON.stringify(r.body));
            const certs = r.body.certificates as { client: string; serving: string };
            received.push({ node: n.name, kind: "client", serial: certificateInfo(certs.client).serial }, { node: n.name, kind: "serving", serial: certificateInfo(certs.serving).serial });
          } catch (e) {
            if (!killed) throw e;
            failed++;
            return;
          }
          if (received.length >= killAt * 2 && !killing) {
            killed = true;
            killing = server.kill();
          }
        }
      }),
    );
    await killing;
    agents.forEach((a) => a.destroy());
    // The kill came while requests were in flight: some were never answered.
    assert.ok(failed > 0, "requests were in flight when the server was killed");
    assert.ok(received.length >= killAt * 2);

    const db = new Database(path.join(server.dir, "nodecert.db"), { readonly: true, fileMustExist: true });
    try {
      const cert = db.prepare("SELECT node, kind FROM certificates WHERE serial = ?");
      const audited = new Set<string>();
      for (const row of db.prepare("SELECT detail FROM audit WHERE type = 'renew.issued'").all() as { detail: string }[]) {
        const d = JSON.parse(row.detail) as { client?: string; serving?: string };
        if (d.client) audited.add(d.client);
        if (d.serving) audited.add(d.serving);
      }
      for (const r of received) {
        assert.deepEqual(cert.get(r.serial), { node: r.node, kind: r.kind }, `certificate ${r.serial} (${r.node} ${r.kind}) was answered but is not recorded`);
        assert.ok(audited.has(r.serial), `certificate ${r.serial} has no renew.issued audit event`);
      }
    } finally {
      db.close();
    }
    const check = await run("sqlite3", [path.join(server.dir, "nodecert.db"), "pragma integrity_check;"]);
    assert.equal(check.stdout.trim(), "ok", check.stderr);
    // And the server comes back on that database and renews again.
    await server.start();
    const agent = new https.Agent({ ca, minVersion: "TLSv1.3" });
    const again = await post({ port: server.port, agent, path: "/v1/join", localAddress: nodes[0].address, headers: { authorization: `Bearer ${await server.createToken({ node: nodes[0].name })}` }, body: { v: PROTOCOL_VERSION, nodeName: nodes[0].name, facts: nodes[0].facts, csrs: { client: nodes[0].client, serving: nodes[0].serving } } });
    agent.destroy();
    assert.equal(again.status, 200, JSON.stringify(again.body));
  });
});
