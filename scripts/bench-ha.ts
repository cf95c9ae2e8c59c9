// Benchmark: the HA control plane on etcd vs the embedded SQLite store, in the same run.
//   1. Issuance: joins (2 certificates each) with pre-made CSRs, 8 in flight, against SQLite, etcd
//      with 1 replica and etcd with 3 replicas (joins spread over them): certificates/s and p99.
//   2. Replica kill: agents on a replica that is killed (bin/nodecert processes, kill -9) →
//      seconds until every one of them has its channel open on another replica.
//   3. Leader kill: kill -9 of the leader during a campaign over 21 agents → seconds until the new
//      leader records its first rotated node, and until the campaign is done.
// Real 3-member etcd cluster with TLS on loopback (test/support/etcd-cluster.ts). Loopback only.
// Usage: node --import tsx scripts/bench-ha.ts [--joins N]
import os from "node:os";
import { performance } from "node:perf_hooks";
import { randomBytes } from "node:crypto";
import { startEtcdCluster } from "../test/support/etcd-cluster.js";
import { freshPrefix, replicaProcesses, startReplicas } from "../test/support/replicas.js";
import { startServer, cleanupTemps, random, type TestServer } from "../test/support/helpers.js";
import { startFleetAgent, until, type FleetAgent } from "../test/support/fleet.js";
import { nodeFacts } from "../test/support/node-client.js";
import { requestJson } from "../src/platform/https-client.js";
import { createNodeCsr } from "../src/pki/csr.js";
import { generateKeyPair } from "../src/pki/keys.js";
import { PROTOCOL_VERSION } from "../src/protocol/messages.js";
import { EtcdStore } from "../src/server/store/etcd.js";
import { certificatePin } from "../src/pki/pin.js";
import { splitCertificates } from "../src/pki/pem.js";
import { generateToken, hashSecret, parseToken } from "../src/server/tokens.js";

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const JOINS = arg("--joins", 120);
const CONCURRENCY = 8;

async function bodies(n: number, tag: string) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const name = `${tag}-${i}`;
    const c = await generateKeyPair("ECDSA-P256");
    const s = await generateKeyPair("ECDSA-P256");
    out.push({ v: PROTOCOL_VERSION, nodeName: name, facts: nodeFacts(name), csrs: { client: await createNodeCsr({ kind: "client", nodeName: name, keys: c }), serving: await createNodeCsr({ kind: "serving", nodeName: name, keys: s, sans: [name, "127.0.0.1"] }) } });
  }
  return out;
}

async function issuance(servers: TestServer[], tag: string) {
  const token = await servers[0].createToken({ uses: JOINS + 1 });
  const work = await bodies(JOINS, tag);
  const lat: number[] = [];
  let next = 0;
  let failed = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < work.length) {
        const i = next++;
        const s = servers[i % servers.length];
        const t = performance.now();
        const r = await requestJson(`${s.url}/v1/join`, { body: work[i], headers: { authorization: `Bearer ${token}` }, tls: { ca: s.authority.trustBundle } });
        lat.push(performance.now() - t);
        if (r.status !== 200) failed++;
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return { certsPerS: (2 * (JOINS - failed)) / secs, p50: lat[Math.floor(lat.length * 0.5)], p99: lat[Math.min(lat.length - 1, Math.floor(lat.length * 0.99))], failed };
}

console.log(`# bench-ha ${new Date().toISOString()} load ${os.loadavg().map((x) => x.toFixed(2)).join(" ")} cpus ${os.cpus().length}`);
const cluster = await startEtcdCluster();
try {
  const sqlite = await startServer();
  const rs = await issuance([sqlite], "sq");
  await sqlite.close();
  const one = await startReplicas(cluster, 1);
  const r1 = await issuance(one, "e1");
  for (const r of one) await r.close();
  const three = await startReplicas(cluster, 3);
  const r3 = await issuance(three, "e3");
  for (const r of three) await r.close();
  const row = (n: string, r: typeof rs) => console.log(`${n.padEnd(26)} ${r.certsPerS.toFixed(1).padStart(7)} certs/s  p50 ${r.p50.toFixed(0).padStart(5)} ms  p99 ${r.p99.toFixed(0).padStart(5)} ms  failed ${r.failed}  (${(r.certsPerS / rs.certsPerS).toFixed(2)}x SQLite)`);
  console.log(`issuance: ${JOINS} joins (2 certs each), ${CONCURRENCY} in flight`);
  row("SQLite, 1 server", rs);
  row("etcd, 1 replica", r1);
  row("etcd, 3 replicas (1 proc)", r3);
  console.log(`load after issuance ${os.loadavg().map((x) => x.toFixed(2)).join(" ")}`);

  // Failover with real processes and kill -9.
  const prefix = freshPrefix();
  const procs = await replicaProcesses(cluster, 3, { prefix });
  const store = new EtcdStore({ endpoints: cluster.endpoints, prefix, tls: cluster.clientTls });
  const pin = certificatePin(splitCertificates(procs[0].trustBundle())[0]);
  const createToken = async () => {
    const t = generateToken(random);
    const { id, secret } = parseToken(t)!;
    await store.insertToken({ id, secretHash: hashSecret(secret), usesLeft: 1, expiresAt: new Date(Date.now() + 3_600_000), createdAt: new Date() });
    return t;
  };
  const urls = procs.map((p) => p.url);
  const agents: FleetAgent[] = [];
  for (let i = 0; i < 21; i++) agents.push(await startFleetAgent({ url: urls[i % 3], pin, createToken }, `bh-${String(i).padStart(2, "0")}-${randomBytes(2).toString("hex")}`, { servers: [0, 1, 2].map((k) => urls[(i + k) % 3]) }));
  const replicaOf = async (node: string) => {
    const v = await store.ns.get(`conns/${node}`).string();
    return v ? (JSON.parse(v).replica as string) : undefined;
  };
  const leaderName = async () => (await store.ns.getAll().prefix("election/leader").sort("Create", "Ascend").strings()) as Record<string, string>;
  const leader = await until("a leader", async () => Object.values(await leaderName())[0], 20_000);
  const victimIdx = [0, 1, 2].find((i) => `replica-${i}` !== leader)!;
  const victim = `replica-${victimIdx}`;
  const onVictim: string[] = [];
  for (const a of agents) if ((await replicaOf(a.name)) === victim) onVictim.push(a.name);
  const tk = performance.now();
  await procs[victimIdx].kill();
  await until("its agents elsewhere", async () => {
    for (const n of onVictim) {
      const r = await replicaOf(n);
      if (!r || r === victim) return false;
    }
    return true;
  }, 120_000);
  const reconnectS = (performance.now() - tk) / 1000;
  console.log(`replica kill -9 (${victim}, not the leader): its ${onVictim.length} agents connected to another replica after ${reconnectS.toFixed(2)} s (etcd lease TTL 2 s; agent reconnect backoff 50-500 ms)`);
  await procs[victimIdx].start();

  // Leader kill during a campaign.
  const leaderIdx = Number(leader.replace("replica-", ""));
  const live = procs.filter((_, i) => i !== leaderIdx)[0];
  const adminTls = { ca: live.trustBundle(), cert: (await import("node:fs")).readFileSync(`${live.dir}/admin/admin.crt`, "utf8"), key: (await import("node:fs")).readFileSync(`${live.dir}/admin/admin.key`, "utf8") };
  await until("agents back on three replicas", async () => {
    for (const a of agents) if (!(await replicaOf(a.name))) return false;
    return true;
  }, 60_000);
  const res = await requestJson(`${live.url}/v1/admin/campaigns`, { body: { all: true, maxInFlight: 3, which: ["client"], reason: "bench leader kill" }, tls: adminTls });
  const id = (res.body as { campaign: { id: string } }).campaign.id;
  await until("some rotated", async () => (await store.countCampaignNodes(id)).done >= 4, 60_000);
  const doneAtKill = (await store.countCampaignNodes(id)).done;
  const tl = performance.now();
  await procs[leaderIdx].kill();
  await until("resumed", async () => (await store.countCampaignNodes(id)).done > doneAtKill, 120_000);
  const resumedS = (performance.now() - tl) / 1000;
  await until("done", async () => (await store.getCampaign(id))?.state === "done", 180_000);
  const finishedS = (performance.now() - tl) / 1000;
  const counts = await store.countCampaignNodes(id);
  console.log(`leader kill -9 (${leader}) with ${doneAtKill}/21 rotated: the new leader rotated its first node after ${resumedS.toFixed(2)} s, campaign done after ${finishedS.toFixed(2)} s (done ${counts.done}, failed ${counts.failed}; lease TTL 2 s, orphan grace 5 s)`);
  for (const a of agents) await a.agent.close().catch(() => undefined);
  for (const p of procs) await p.stop().catch(() => undefined);
  await store.close();
} finally {
  await cluster.stop();
  console.log(`load at end ${os.loadavg().map((x) => x.toFixed(2)).join(" ")}`);
  cleanupTemps();
}
process.exit(0);
