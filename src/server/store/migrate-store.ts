// `nodecert server migrate-store --from sqlite:PATH --to etcd`: copies an installation's state
// (tokens, nodes, certificates, SAN grants, audit, campaigns, kv incl. the CA-rotation state) and
// its CA files into the etcd prefix server.yaml names, then compares the counts on both sides.
// It refuses a prefix that holds anything (never merges two installations).
import type { EtcdStore } from "./etcd.js";
import type { SqliteStore } from "./sqlite.js";
import type { AuditEvent, CampaignNodeRecord, IssuedCertRecord, SanGrant } from "./store.js";
import type { TokenRecord } from "../tokens.js";
import type { ServerPaths } from "../paths.js";
import { readCaFiles, type CaSnapshot } from "../ca/ca-sync.js";

export interface MigrationReport {
  counts: Record<string, { sqlite: number; etcd: number }>;
  ok: boolean;
}

export async function migrateSqliteToEtcd(from: SqliteStore, to: EtcdStore, paths: ServerPaths, replica = "migrate-store"): Promise<MigrationReport> {
  if (!(await to.isEmpty())) throw new Error(`the etcd prefix ${to.o.prefix} is not empty: migrate into a new prefix (store.prefix in server.yaml), or remove it with 'etcdctl del --prefix ${to.o.prefix}' if it is a failed earlier attempt`);
  const db = from.db;
  const tokens: TokenRecord[] = [];
  for (const r of db.prepare(`SELECT id FROM tokens ORDER BY rowid`).all() as { id: string }[]) tokens.push((await from.getToken(r.id))!);
  const nodes = await from.listNodes();
  const certificates: IssuedCertRecord[] = [];
  // Insertion order (rowid) is what "newest" means: keep it.
  for (const r of db.prepare(`SELECT serial, node FROM certificates ORDER BY rowid`).all() as { serial: string; node: string }[]) {
    const c = (await from.getCertificate(r.serial))!;
    const sans = db.prepare(`SELECT kind, value FROM certificate_sans WHERE serial = ? ORDER BY rowid`).all(r.serial) as { kind: string; value: string }[];
    certificates.push(sans.length ? { ...c, sans: { dns: sans.filter((s) => s.kind === "dns").map((s) => s.value), ip: sans.filter((s) => s.kind === "ip").map((s) => s.value) } } : c);
  }
  const grants: { node: string; grant: SanGrant }[] = [];
  for (const n of db.prepare(`SELECT DISTINCT node FROM san_grants`).all() as { node: string }[]) for (const g of await from.listSanGrants(n.node)) grants.push({ node: n.node, grant: g });
  const auditCount = (db.prepare(`SELECT COUNT(*) AS n FROM audit`).get() as { n: number }).n;
  const audit: AuditEvent[] = (await from.listAudit(auditCount)).reverse(); // oldest first
  const campaigns: { campaign: Awaited<ReturnType<SqliteStore["getCampaign"]>> & object; nodes: CampaignNodeRecord[] }[] = [];
  for (const c of await from.listCampaigns()) campaigns.push({ campaign: c, nodes: await from.listCampaignNodes(c.id) });
  const kv = (db.prepare(`SELECT key, value FROM kv ORDER BY key`).all() as { key: string; value: string }[]).map((r): [string, unknown] => [r.key, JSON.parse(r.value)]);
  await to.importAll({ tokens, nodes, certificates, audit, campaigns, kv, grants });
  // The CA (sealed key: the kek stays with each replica) and its rotation phase, as replicas share them.
  const rotation = kv.find(([k]) => k === "ca-rotation")?.[1];
  const snap: CaSnapshot = { version: 1, by: replica, files: await readCaFiles(paths), rotation };
  if (!(await to.casKv("ca-files", undefined, snap))) throw new Error("another process wrote the CA to the etcd prefix during the migration: stop the replicas and retry");
  const after = await to.counts();
  const q = (sql: string) => (db.prepare(sql).get() as { n: number }).n;
  const before: Record<string, number> = {
    tokens: q(`SELECT COUNT(*) AS n FROM tokens`),
    nodes: q(`SELECT COUNT(*) AS n FROM nodes`),
    certificates: q(`SELECT COUNT(*) AS n FROM certificates`),
    audit: auditCount,
    campaigns: q(`SELECT COUNT(*) AS n FROM campaigns`),
    campaignNodes: q(`SELECT COUNT(*) AS n FROM campaign_nodes`),
    grants: q(`SELECT COUNT(*) AS n FROM san_grants`),
  };
  const counts = Object.fromEntries(Object.keys(before).map((k) => [k, { sqlite: before[k], etcd: after[k] }]));
  return { counts, ok: Object.values(counts).every((c) => c.sqlite === c.etcd) };
}
