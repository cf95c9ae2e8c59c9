import { strict as assert } from "node:assert";
import { requestJson } from "../../src/platform/https-client.js";
import { requireEtcd, startEtcdCluster, type EtcdCluster } from "../support/etcd-cluster.js";
import { startReplicas } from "../support/replicas.js";
import { joinRaw, renewRaw } from "../support/node-client.js";
import { until } from "../support/fleet.js";
import type { TestServer } from "../support/helpers.js";

describe("readiness: a replica that loses etcd stops signing and recovers by itself", function () {
  this.timeout(180_000);
  let cluster: EtcdCluster | undefined;
  let replicas: TestServer[] = [];
  before(async function () {
    requireEtcd(this);
    cluster = await startEtcdCluster();
  });
  after(async () => {
    for (const r of replicas) await r.close().catch(() => undefined);
    await cluster?.stop();
  });

  const readyz = (s: TestServer) => requestJson(`${s.url}/readyz`, { tls: { ca: s.authority.trustBundle }, timeoutMs: 10_000 });

  it("one etcd member killed: service continues; two killed: 503 with the reason on /readyz, join and renew; both back: ready and signing again", async () => {
    replicas = await startReplicas(cluster!, 2);
    const [a, b] = replicas;
    const j = await joinRaw(a, "n-ready", await a.createToken());
    assert.equal(j.status, 200);
    let cred = j.credential!;

    await cluster!.members[0].kill();
    const r1 = await renewRaw(b, "n-ready", cred);
    assert.equal(r1.status, 200, `one member down: still signing (${JSON.stringify(r1.body)})`);
    cred = r1.credential!;
    // Killing the etcd leader costs an election; a probe caught in it may fail. Ready again within seconds.
    for (const s of replicas) await until(`${s.replicas!.name} ready with one etcd member down`, async () => (await readyz(s)).status === 200, 10_000);

    await cluster!.members[1].kill();
    for (const s of replicas) await until(`${s.replicas!.name} unready`, async () => (await readyz(s)).status === 503, 30_000);
    const rz = await readyz(a);
    assert.equal((rz.body as { error: string }).error, "store-unavailable");
    assert.match((rz.body as { reason: string }).reason, /etcd store .* does not answer/);
    const refused = await renewRaw(b, "n-ready", cred);
    assert.equal(refused.status, 503);
    assert.equal((refused.body as { error: string }).error, "store-unavailable");
    const token = "abcdef.0123456789abcdef";
    const jr = await joinRaw(a, "n-late", token);
    assert.equal(jr.status, 503, "no join either");

    await cluster!.members[0].start();
    await cluster!.members[1].start();
    for (const s of replicas) await until(`${s.replicas!.name} ready again`, async () => (await readyz(s)).status === 200, 60_000);
    const r2 = await renewRaw(a, "n-ready", cred);
    assert.equal(r2.status, 200, JSON.stringify(r2.body));
    assert.equal((await a.store.latestCertificates("n-ready", "client", 1))[0].serial, r2.credential!.serial);
  });
});
