import { strict as assert } from "node:assert";
import { readFileSync, writeFileSync } from "node:fs";
import YAML from "yaml";
import { requireEtcd, startEtcdCluster, etcdStoreConfig, type EtcdCluster } from "../../support/etcd-cluster.js";
import { freshPrefix } from "../../support/replicas.js";
import { nodecert, startServer } from "../../support/helpers.js";
import { joinRaw, renewRaw } from "../../support/node-client.js";

describe("nodecert server migrate-store --from sqlite:PATH --to etcd (a populated SQLite installation, a real etcd cluster)", function () {
  this.timeout(180_000);
  let cluster: EtcdCluster | undefined;
  before(async function () {
    requireEtcd(this);
    cluster = await startEtcdCluster();
  });
  after(async () => cluster?.stop());

  it("copies everything, verifies the counts, and the server on etcd shows the same nodes and keeps each node's lineage", async () => {
    const s = await startServer();
    const creds = [];
    for (const n of ["mig-a", "mig-b", "mig-c"]) {
      const j = await joinRaw(s, n, await s.createToken());
      assert.equal(j.status, 200);
      creds.push(j.credential!);
    }
    const renewed = await renewRaw(s, "mig-a", creds[0]);
    assert.equal(renewed.status, 200);
    await s.store.setEvicted("mig-c", new Date());
    await s.store.addSanGrants("mig-b", [{ kind: "dns", value: "b.lan", source: "operator", createdAt: new Date() }], { time: new Date(), type: "san.approved", node: "mig-b" });
    await s.store.createCampaign({ id: "c-old", createdAt: new Date(), state: "done", maxInFlight: 1, reason: "old", which: ["client"] }, ["mig-a", "mig-b"]);
    await s.createToken({ uses: 3 });
    const nodesBefore = await nodecert(["nodes", "--dir", s.dir, "--server", s.url, "--output", "json"]);
    assert.equal(nodesBefore.code, 0, nodesBefore.stderr);
    await s.close();

    const prefix = freshPrefix();
    const cfg = YAML.parse(readFileSync(s.paths.config, "utf8"));
    writeFileSync(s.paths.config, YAML.stringify({ ...cfg, store: etcdStoreConfig(cluster!, prefix, "migrated") }), { mode: 0o600 });
    const m = await nodecert(["server", "migrate-store", "--dir", s.dir, "--from", `sqlite:${s.paths.db}`, "--to", "etcd"]);
    assert.equal(m.code, 0, m.stderr + m.stdout);
    assert.match(m.stdout, /^nodes\s+sqlite\s+3\s+etcd\s+3$/m);
    assert.match(m.stdout, /^certificates\s+sqlite\s+9\s+etcd\s+9$/m); // 3 joins x 2, 1 renewal, the TLS and admin certificates
    assert.match(m.stdout, /^tokens\s+sqlite\s+4\s+etcd\s+4$/m);
    assert.match(m.stdout, /counts verified/);
    // A second run refuses: the prefix holds an installation now.
    const again = await nodecert(["server", "migrate-store", "--dir", s.dir, "--from", `sqlite:${s.paths.db}`, "--to", "etcd"]);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /is not empty/);

    const e = await startServer({ dir: s.dir });
    try {
      assert.equal(e.replicas?.name, "migrated", "runs on etcd");
      assert.equal(e.ca.pin, s.ca.pin, "the same CA");
      const nodesAfter = await nodecert(["nodes", "--dir", s.dir, "--server", e.url, "--output", "json"]);
      assert.equal(nodesAfter.code, 0, nodesAfter.stderr);
      const strip = (out: string) => (JSON.parse(out).nodes as { name: string; evicted: boolean; lastSeen: string; addresses: string[] }[]).map((n) => ({ name: n.name, evicted: n.evicted, lastSeen: n.lastSeen, addresses: n.addresses }));
      assert.deepEqual(strip(nodesAfter.stdout), strip(nodesBefore.stdout));
      // Lineage survived: the newest renews; once it has, the one before it is refused.
      assert.equal((await renewRaw(e, "mig-a", renewed.credential!)).status, 200);
      assert.equal((await renewRaw(e, "mig-a", creds[0])).status, 403);
      assert.equal((await renewRaw(e, "mig-c", creds[2])).status, 403, "still evicted");
      assert.deepEqual((await e.store.listSanGrants("mig-b")).map((g) => g.value), ["b.lan"]);
      assert.equal((await e.store.getCampaign("c-old"))?.state, "done");
    } finally {
      await e.close();
    }
  });

  it("refuses a server.yaml without an etcd store, and a --from that is not sqlite:PATH, saying what to do", async () => {
    const s = await startServer();
    await s.close();
    const r = await nodecert(["server", "migrate-store", "--dir", s.dir, "--from", `sqlite:${s.paths.db}`, "--to", "etcd"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /has no etcd store: set store: \{ kind: etcd/);
    const r2 = await nodecert(["server", "migrate-store", "--dir", s.dir, "--from", s.paths.db, "--to", "etcd"]);
    assert.match(r2.stderr, /--from must be sqlite:PATH/);
  });
});
