import { strict as assert } from "node:assert";
import { requireEtcd, startEtcdCluster, type EtcdCluster } from "../support/etcd-cluster.js";
import { startReplicas } from "../support/replicas.js";
import { startFleetAgent, until, type FleetAgent } from "../support/fleet.js";
import type { TestServer } from "../support/helpers.js";
import { requestJson } from "../../src/platform/https-client.js";
import { readFileSync } from "node:fs";

describe("e2e: agents across control-plane replicas (real etcd cluster)", function () {
  this.timeout(180_000);
  let cluster: EtcdCluster | undefined;
  let replicas: TestServer[] = [];
  const agents: FleetAgent[] = [];
  before(async function () {
    requireEtcd(this);
    cluster = await startEtcdCluster();
  });
  afterEach(async () => {
    for (const a of agents.splice(0)) await a.agent.close().catch(() => undefined);
    for (const r of replicas.splice(0)) await r.close().catch(() => undefined);
  });
  after(async () => cluster?.stop());

  const adminNodes = async (s: TestServer) => {
    const p = s.paths;
    const res = await requestJson(`${s.url}/v1/admin/nodes`, { tls: { ca: readFileSync(p.adminCa, "utf8"), cert: readFileSync(p.adminCert, "utf8"), key: readFileSync(p.adminKey, "utf8") } });
    return (res.body as { nodes: { name: string; connected: boolean; replica?: string }[] }).nodes;
  };

  it("a campaign run by the leader rotates agents connected to another replica (commands and acks through etcd); nodes shows each agent's replica", async () => {
    replicas = await startReplicas(cluster!, 2, { campaignOptions: { tickMs: 100, commandTimeoutMs: 15_000, retryBaseMs: 200 } });
    await until("a leader", () => replicas.some((r) => r.replicas!.isLeader()), 20_000);
    const leader = replicas.find((r) => r.replicas!.isLeader())!;
    const other = replicas.find((r) => r !== leader)!;
    const creds = { url: other.url, pin: other.ca.pin, createToken: other.createToken };
    // Only the non-leader is listed: under load a slow first connection would otherwise fail over
    // to the leader, and the commands would not cross replicas (failover has its own test below).
    for (let i = 0; i < 4; i++) agents.push(await startFleetAgent(creds, `xr-${i}`, { servers: [other.url] }));
    await until("agents on the other replica, seen by the leader", () => agents.every((a) => other.hub.connected(a.name) && leader.replicas!.cluster.replicaOf(a.name) === other.replicas!.name), 20_000);
    const before = await Promise.all(agents.map(async (a) => (await leader.store.latestCertificates(a.name, "client", 1))[0].serial));
    const c = await other.campaigns.start({ nodes: "all", maxInFlight: 2, which: ["client"], reason: "cross-replica" });
    await until("campaign done", async () => (await leader.store.getCampaign(c.id))?.state === "done", 60_000);
    const nodes = await leader.store.listCampaignNodes(c.id);
    assert.deepEqual(nodes.map((n) => n.state), ["done", "done", "done", "done"], JSON.stringify(nodes));
    for (const [i, a] of agents.entries()) {
      const now = (await leader.store.latestCertificates(a.name, "client", 1))[0].serial;
      assert.notEqual(now, before[i], `${a.name} rotated`);
      assert.equal(nodes[i].serials?.client, now, "the ack's serial is the one recorded");
    }
    // `nodecert nodes` through either replica names the replica each agent is on.
    for (const s of replicas) {
      const view = await until("views with replicas", async () => {
        const v = await adminNodes(s);
        return v.every((n) => n.replica === other.replicas!.name) && v;
      }, 20_000);
      assert.equal(view.length, 4);
    }
  });

  it("when the replica an agent is connected to dies, its channel reconnects to another one listed in server:", async () => {
    replicas = await startReplicas(cluster!, 2);
    const [a, b] = replicas;
    agents.push(await startFleetAgent({ url: a.url, pin: a.ca.pin, createToken: a.createToken }, "fo-0", { servers: [a.url, b.url] }));
    await until("connected to the first", () => a.hub.connected("fo-0"), 20_000);
    await a.close();
    replicas = [b];
    await until("reconnected to the second", () => b.hub.connected("fo-0"), 30_000);
    assert.equal(b.replicas!.cluster.replicaOf("fo-0"), b.replicas!.name);
  });
});

describe("e2e: CA rotation across replicas (real etcd cluster)", function () {
  this.timeout(240_000);
  let cluster: EtcdCluster | undefined;
  let replicas: TestServer[] = [];
  const agents: FleetAgent[] = [];
  before(async function () {
    requireEtcd(this);
    cluster = await startEtcdCluster();
  });
  after(async () => {
    for (const a of agents) await a.agent.close().catch(() => undefined);
    for (const r of replicas) await r.close().catch(() => undefined);
    await cluster?.stop();
  });

  it("every replica serves the new chain after the switch and signs from the new CA; no agent is locked out", async () => {
    replicas = await startReplicas(cluster!, 2, { campaignOptions: { tickMs: 100, commandTimeoutMs: 15_000, retryBaseMs: 200 } });
    const [r0, r1] = replicas;
    const oldPin = r0.ca.pin;
    for (let i = 0; i < 4; i++) {
      const s = replicas[i % 2];
      agents.push(await startFleetAgent({ url: s.url, pin: oldPin, createToken: s.createToken }, `car-${i}`, { servers: [s.url, replicas[(i + 1) % 2].url] }));
    }
    await until("agents reported", async () => (await r0.store.listNodes()).every((n) => n.reported), 20_000);
    // Asked of either replica: the leader advances the phases.
    const started = await r1.caRotation.start({});
    await until("rotation done", async () => (await r0.store.getKv<{ phase: string }>("ca-rotation"))?.phase === "done", 45_000).catch(async (e) => {
      for (const r of replicas) console.log(r.replicas!.name, r.replicas!.isLeader(), JSON.stringify(await r.caRotation.status()).slice(0, 1500), r.logLines.filter((l) => /CA|rotation|campaign|error/i.test(l)).slice(-15).join("\n"));
      throw e;
    });
    // The leader stores "done" and then waits (bounded) for every replica to apply it.
    await until("both replicas on the new CA alone", async () => {
      for (const r of replicas) if (r.ca.pin === oldPin || (await r.caRotation.status()).bundleCertificates !== 1) return false;
      return true;
    }, 30_000);
    assert.equal(new Set(replicas.map((r) => r.ca.pin)).size, 1);
    for (const r of replicas) {
      const st = await r.caRotation.status();
      assert.deepEqual(st.joinPins.map((p) => [p.pin === r.ca.pin, p.valid]), [[true, true]], `${r.replicas!.name} serves a chain that verifies against the new CA alone`);
    }
    for (const a of agents) {
      const [client] = await r0.store.latestCertificates(a.name, "client", 1);
      assert.equal(client.issuerFingerprint, started.newFingerprint, `${a.name} holds a new-CA client certificate`);
      await until(`${a.name} trusting the new CA only (pushed by its replica)`, () => readFileSync(`${a.root}/etc/kubernetes/pki/ca.crt`, "utf8") === r0.authority.trustBundle, 30_000);
    }
    await until("every agent connected to a replica", () => agents.every((a) => replicas.some((r) => r.hub.connected(a.name))), 30_000);
    // Not locked out: a campaign after the rotation rotates every node again.
    const c = await r0.campaigns.start({ nodes: "all", maxInFlight: 4, which: ["client"], reason: "after rotation" });
    await until("post-rotation campaign done", async () => (await r0.store.getCampaign(c.id))?.state === "done", 60_000);
    assert.deepEqual(await r0.store.countCampaignNodes(c.id), { pending: 0, "in-flight": 0, done: 4, failed: 0 });
  });
});
