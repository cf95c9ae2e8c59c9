import { strict as assert } from "node:assert";
import { requireEtcd, startEtcdCluster, type EtcdCluster } from "../../support/etcd-cluster.js";
import { startReplicas } from "../../support/replicas.js";
import { joinRaw, renewRaw } from "../../support/node-client.js";
import { until } from "../../support/fleet.js";
import type { TestServer } from "../../support/helpers.js";

describe("server replicas on one etcd prefix (a real 3-member TLS etcd cluster)", function () {
  this.timeout(120_000);
  let cluster: EtcdCluster | undefined;
  let replicas: TestServer[] = [];
  before(async function () {
    requireEtcd(this);
    cluster = await startEtcdCluster();
  });
  afterEach(async () => {
    for (const r of replicas.splice(0)) await r.close().catch(() => undefined);
  });
  after(async () => cluster?.stop());

  it("every replica serves the one CA from etcd; joins and renewals work through each replica, whichever one issued before", async () => {
    replicas = await startReplicas(cluster!, 3);
    const pins = replicas.map((r) => r.ca.pin);
    assert.equal(new Set(pins).size, 1, "one CA across the replicas");
    assert.equal(new Set(replicas.map((r) => r.authority.trustBundle)).size, 1);
    for (let i = 0; i < 3; i++) {
      const token = await replicas[(i + 1) % 3].createToken(); // made on another replica
      const j = await joinRaw(replicas[i], `node-${i}`, token);
      assert.equal(j.status, 200, JSON.stringify(j.body));
      const r = await renewRaw(replicas[(i + 2) % 3], `node-${i}`, j.credential!);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      // The old certificate is superseded everywhere once the new one is used.
      const again = await renewRaw(replicas[i], `node-${i}`, r.credential!);
      assert.equal(again.status, 200);
      assert.equal((await renewRaw(replicas[(i + 1) % 3], `node-${i}`, j.credential!)).status, 403);
    }
    assert.deepEqual((await replicas[0].store.listNodes()).map((n) => n.name), ["node-0", "node-1", "node-2"]);
  });

  it("the 1-use token race across replicas: 9 concurrent joins on 3 replicas, exactly one node created", async () => {
    replicas = await startReplicas(cluster!, 3);
    const token = await replicas[0].createToken({ uses: 1 });
    const res = await Promise.all(Array.from({ length: 9 }, (_, i) => joinRaw(replicas[i % 3], `racer-${i}`, token)));
    const ok = res.filter((r) => r.status === 200);
    assert.equal(ok.length, 1, res.map((r) => `${r.status} ${JSON.stringify(r.body)}`).join("\n"));
    for (const r of res.filter((x) => x.status !== 200)) assert.equal(r.status, 401, JSON.stringify(r.body));
    assert.equal((await replicas[1].store.listNodes()).length, 1);
    assert.equal((await replicas[2].store.listCertificates()).filter((c) => c.kind === "client" && c.node.startsWith("racer-")).length, 1);
  });

  it("exactly one replica leads fleet work; when it stops, another takes over within the lease TTL", async () => {
    replicas = await startReplicas(cluster!, 3);
    const leaders = () => replicas.filter((r) => r.replicas!.isLeader());
    await until("a leader", () => leaders().length === 1, 20_000);
    const first = leaders()[0];
    await first.close();
    replicas = replicas.filter((r) => r !== first);
    await until("a new leader", () => leaders().length === 1, 20_000);
    assert.notEqual(leaders()[0].replicas!.name, first.replicas!.name);
  });
});
