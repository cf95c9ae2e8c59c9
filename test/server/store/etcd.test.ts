import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { EtcdStore } from "../../../src/server/store/etcd.js";
import { requireEtcd, startEtcdCluster, type EtcdCluster } from "../../support/etcd-cluster.js";
import { storeContract } from "./contract.js";

describe("server/store/etcd (a real 3-member etcd cluster, mTLS)", function () {
  let cluster: EtcdCluster | undefined;
  before(async function () {
    requireEtcd(this);
    cluster = await startEtcdCluster();
  });
  after(async () => cluster?.stop());

  // Each case on its own prefix; every handle talks to a different member, as replicas would.
  storeContract("etcd (3 members, each handle on another member)", async () => {
    const prefix = `/nodecert-test/${randomBytes(4).toString("hex")}/`;
    let i = 0;
    const open = () => new EtcdStore({ endpoints: [cluster!.endpoints[i++ % 3]], prefix, tls: cluster!.clientTls, requestTimeoutMs: 5000 });
    return { store: open(), peer: open };
  });

  it("keeps its keys under the prefix, readable by etcdctl", async () => {
    const prefix = `/nodecert-test/${randomBytes(4).toString("hex")}/`;
    const s = new EtcdStore({ endpoints: cluster!.endpoints, prefix, tls: cluster!.clientTls });
    await s.setKv("hello", { v: 1 });
    await s.close();
    const r = await cluster!.etcdctl(["get", `${prefix}kv/hello`, "--print-value-only"]);
    assert.deepEqual(JSON.parse(r.stdout), { v: 1 });
  });

  it("refuses to start without a client certificate etcd accepts, saying which file is missing", () => {
    assert.throws(() => new EtcdStore({ endpoints: cluster!.endpoints, prefix: "/x/", tls: { ca: "/nonexistent/ca.crt" } }), /store\.tls\.ca \(\/nonexistent\/ca\.crt\): ENOENT/);
    assert.throws(() => new EtcdStore({ endpoints: [], prefix: "/x/" }), /store\.endpoints is empty/);
  });
});
