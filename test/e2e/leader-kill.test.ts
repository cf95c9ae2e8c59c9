import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import path from "node:path";
import { requireEtcd, startEtcdCluster, type EtcdCluster } from "../support/etcd-cluster.js";
import { freshPrefix, replicaProcesses } from "../support/replicas.js";
import { startFleetAgent, until, type FleetAgent } from "../support/fleet.js";
import type { ServerProcess } from "../support/server-process.js";
import { EtcdStore } from "../../src/server/store/etcd.js";
import { certificatePin } from "../../src/pki/pin.js";
import { splitCertificates } from "../../src/pki/pem.js";
import { requestJson } from "../../src/platform/https-client.js";
import { generateToken, hashSecret, parseToken } from "../../src/server/tokens.js";
import { random } from "../support/helpers.js";

describe("e2e: kill -9 of the leader replica during a campaign over 21 agents", function () {
  this.timeout(300_000);
  let cluster: EtcdCluster | undefined;
  let replicas: ServerProcess[] = [];
  const agents: FleetAgent[] = [];
  let store: EtcdStore | undefined;
  before(async function () {
    requireEtcd(this);
    cluster = await startEtcdCluster();
  });
  after(async () => {
    for (const a of agents) await a.agent.close().catch(() => undefined);
    for (const r of replicas) await r.stop().catch(() => undefined);
    await store?.close();
    await cluster?.stop();
  });

  it("the campaign finishes on another replica: 0 failed, every node rotated exactly once, agents of the dead replica reconnected elsewhere", async () => {
    const prefix = freshPrefix();
    replicas = await replicaProcesses(cluster!, 3, { prefix, config: { caRotation: { autoAdvance: true, maxInFlight: 3 } } });
    store = new EtcdStore({ endpoints: cluster!.endpoints, prefix, tls: cluster!.clientTls });
    const bundle = replicas[0].trustBundle();
    const pin = certificatePin(splitCertificates(bundle)[0]);
    const createToken = async () => {
      const token = generateToken(random);
      const { id, secret } = parseToken(token)!;
      await store!.insertToken({ id, secretHash: hashSecret(secret), usesLeft: 1, expiresAt: new Date(Date.now() + 3_600_000), createdAt: new Date() });
      return token;
    };
    const urls = replicas.map((r) => r.url);
    for (let i = 0; i < 21; i++) {
      // Spread over the replicas: agent i prefers replica i mod 3, then the others.
      const servers = [0, 1, 2].map((k) => urls[(i + k) % 3]);
      agents.push(await startFleetAgent({ url: servers[0], pin, createToken }, `lk-${String(i).padStart(2, "0")}`, { servers }));
    }
    const leaderName = async () => (await until("a leader", async () => {
      const r = await cluster!.etcdctl(["get", "--prefix", `${prefix}election/leader`, "--sort-by=CREATE", "--order=ASCEND", "--print-value-only"]);
      return r.stdout.trim().split("\n")[0] || undefined;
    }, 20_000));
    const first = await leaderName();
    const leader = replicas[Number(first.replace("replica-", ""))];
    const admin = (p: ServerProcess) => {
      const d = path.join(p.dir, "admin");
      return { ca: readFileSync(path.join(d, "ca.crt"), "utf8"), cert: readFileSync(path.join(d, "admin.crt"), "utf8"), key: readFileSync(path.join(d, "admin.key"), "utf8") };
    };
    // The campaign is asked of a replica that is not the leader: the leader picks it up.
    const asked = replicas.find((r) => r !== leader)!;
    const started = new Date();
    const res = await requestJson(`${asked.url}/v1/admin/campaigns`, { body: { all: true, maxInFlight: 3, which: ["client"], reason: "leader kill" }, tls: admin(asked) });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const id = (res.body as { campaign: { id: string } }).campaign.id;
    await until("a few nodes rotated", async () => (await store!.countCampaignNodes(id)).done >= 4, 60_000);
    await leader.kill();
    const killedAt = Date.now();
    const next = await until("another leader", async () => {
      const n = await leaderName();
      return n !== first && n;
    }, 30_000);
    await until("campaign done", async () => (await store!.getCampaign(id))?.state === "done", 180_000);
    const resumedS = (Date.now() - killedAt) / 1000;
    const counts = await store!.countCampaignNodes(id);
    assert.deepEqual(counts, { pending: 0, "in-flight": 0, done: 21, failed: 0 });
    for (const a of agents) {
      const certs: import("../../src/server/store/store.js").IssuedCertRecord[] = await store!.listCertificates(a.name);
      const rotated = certs.filter((c) => c.kind === "client" && c.issuedAt >= started);
      assert.equal(rotated.length, 1, `${a.name} rotated exactly once (got ${rotated.map((c) => c.serial).join(", ")})`);
    }
    // Every agent's channel is open on a live replica.
    await until("every agent on a live replica", async () => {
      for (const a of agents) {
        const v = await store!.ns.get(`conns/${a.name}`).string();
        if (!v || JSON.parse(v).replica === first) return false;
      }
      return true;
    }, 60_000);
    console.log(`      leader ${first} killed; ${next} finished the campaign ${resumedS.toFixed(1)} s after the kill`);
  });
});
