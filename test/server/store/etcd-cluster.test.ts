import { strict as assert } from "node:assert";
import { requireEtcd, startEtcdCluster, type EtcdCluster } from "../../support/etcd-cluster.js";
import { run } from "../../support/helpers.js";

describe("test support: a 3-member etcd cluster on loopback with TLS", function () {
  let cluster: EtcdCluster;
  before(async function () {
    requireEtcd(this);
    cluster = await startEtcdCluster();
  });
  after(async () => cluster?.stop());

  it("serves clients that present its client certificate and has three members", async () => {
    assert.equal((await cluster.etcdctl(["put", "/x", "1"])).code, 0);
    assert.equal((await cluster.etcdctl(["get", "/x", "--print-value-only"])).stdout.trim(), "1");
    const list = await cluster.etcdctl(["member", "list"]);
    assert.equal(list.stdout.trim().split("\n").length, 3, list.stdout);
  });

  it("refuses a client without a certificate (client mTLS)", async () => {
    const r = await run("etcdctl", ["--endpoints", cluster.endpoints[0], "--cacert", cluster.clientTls.ca, "--dial-timeout", "1s", "--command-timeout", "2s", "get", "/x"], { env: { ETCDCTL_API: "3" } });
    assert.notEqual(r.code, 0);
  });

  it("keeps serving with one member killed, and that member rejoins", async () => {
    const { until } = await import("../../support/fleet.js");
    await cluster.members[0].kill();
    // If it was the leader, a write waits for the election (500 ms timeout here): it lands within seconds.
    let put: { code: number; stderr: string } | undefined;
    await until("a write with one member down", async () => (put = await cluster.etcdctl(["put", "/y", "2"])).code === 0, 10_000).catch((e: Error) => {
      throw new Error(`${e.message}: ${put?.stderr}`);
    });
    await cluster.members[0].start();
    const one = async () => run("etcdctl", ["--endpoints", cluster.members[0].clientUrl, "--cacert", cluster.clientTls.ca, "--cert", cluster.clientTls.cert, "--key", cluster.clientTls.key, "--command-timeout", "2s", "get", "/y", "--print-value-only"], { env: { ETCDCTL_API: "3" } });
    await until("the member back with the write it missed", async () => (await one()).stdout.trim() === "2", 30_000);
  });
});
