// Soak for the retention policy (issue 18): a fleet renewing daily for many simulated days against a
// real SQLite file, once with retention and once without (the peer, same run). Prints the database
// size over time and per renewal. Usage: node --import tsx scripts/soak-retention.ts [nodes] [days]
import { statSync, existsSync } from "node:fs";
import path from "node:path";
import os from "node:os";
import { mkdtempSync, rmSync } from "node:fs";
import { SqliteStore } from "../src/server/store/sqlite.js";
import { Retention } from "../src/server/retention.js";
import { hashSecret } from "../src/server/tokens.js";
import { silentLogger } from "../src/platform/log.js";
import type { IssuedCertRecord } from "../src/server/store/store.js";

const DAY = 86_400_000;

export interface SoakResult {
  /** Database bytes (main file + WAL) at the end of each simulated day. */
  bytesByDay: number[];
  renewals: number;
}

export async function soak(o: { dir: string; nodes: number; days: number; lifetimeDays: number; retention?: { certificateGrace: number; audit: number } }): Promise<SoakResult> {
  const db = path.join(o.dir, "server.db");
  const store = new SqliteStore(db);
  let t = Date.UTC(2026, 0, 1);
  const clock = () => new Date(t);
  const retention = o.retention ? new Retention({ store, policy: { ...o.retention, interval: 0 }, archiveDir: path.join(o.dir, "archive"), clock, logger: silentLogger(), setTimer: () => ({ cancel() {} }) }) : undefined;
  let serial = 0;
  const cert = (node: string, kind: "client" | "serving"): IssuedCertRecord => {
    const s = (++serial).toString(16).padStart(32, "0");
    return { serial: s, node, kind, notBefore: new Date(t - 300_000), notAfter: new Date(t + o.lifetimeDays * DAY), fingerprint256: s.repeat(2), issuedAt: new Date(t), issuerFingerprint: "ab".repeat(32), sans: kind === "serving" ? { dns: [node], ip: ["10.0.0.1"] } : undefined };
  };
  const facts = (n: string) => ({ hostname: n, addresses: ["10.0.0.1"], agentVersion: "soak" });
  const confirmed = new Map<string, string>();
  for (let i = 0; i < o.nodes; i++) {
    const node = `node-${i}`;
    const id = `t${String(i).padStart(5, "0")}`;
    await store.insertToken({ id, secretHash: hashSecret("x"), usesLeft: 1, expiresAt: new Date(t + DAY), createdAt: clock() });
    const client = cert(node, "client");
    await store.commitJoin({ tokenId: id, now: clock(), node, facts: facts(node), certificates: [client, cert(node, "serving")], audit: { time: clock(), type: "join.issued", node, source: "10.0.0.1", detail: { tokenId: id } } });
    confirmed.set(node, client.serial);
  }
  const bytesByDay: number[] = [];
  let renewals = 0;
  for (let day = 0; day < o.days; day++) {
    t += DAY;
    for (let i = 0; i < o.nodes; i++) {
      const node = `node-${i}`;
      const client = cert(node, "client");
      const serving = cert(node, "serving");
      const r = await store.commitRenewal({ now: clock(), node, facts: facts(node), confirmedSerial: confirmed.get(node)!, certificates: [client, serving], audit: { time: clock(), type: "renew.issued", node, source: "10.0.0.1", detail: { presented: confirmed.get(node), client: client.serial, serving: serving.serial } } });
      if (r.code !== "ok") throw new Error(`renewal ${node}: ${r.code}`);
      confirmed.set(node, client.serial);
      renewals++;
    }
    await retention?.runOnce();
    // What stays on disk once the WAL is folded in (SQLite checkpoints on its own; here every day).
    (store as unknown as { db: { pragma(s: string): unknown } }).db.pragma("wal_checkpoint(TRUNCATE)");
    const size = (f: string) => (existsSync(f) ? statSync(f).size : 0);
    bytesByDay.push(size(db) + size(`${db}-wal`));
  }
  await store.close();
  return { bytesByDay, renewals };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const nodes = Number(process.argv[2] ?? 2000);
  const days = Number(process.argv[3] ?? 120);
  const policy = { certificateGrace: 7 * DAY, audit: 30 * DAY };
  const run = async (label: string, retention?: typeof policy) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "nodecert-soak-"));
    const start = process.hrtime.bigint();
    try {
      const r = await soak({ dir, nodes, days, lifetimeDays: 2, retention });
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      return { label, ...r, ms };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  const kept = await run("no retention (peer)");
  const pruned = await run("retention: grace 7d, audit 30d", policy);
  const mib = (b: number) => (b / 1048576).toFixed(2);
  console.log(`nodes ${nodes}, days ${days} (one renewal per node a day, 2-day certificates), load ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  for (const r of [kept, pruned]) {
    const at = (d: number) => mib(r.bytesByDay[Math.min(r.bytesByDay.length, d) - 1]);
    console.log(`${r.label}: ${r.renewals} renewals; MiB at day 30 ${at(30)}, 60 ${at(60)}, 90 ${at(90)}, ${days} ${at(days)}; ${(r.bytesByDay[days - 1] / r.renewals / 1024).toFixed(3)} KiB per renewal; ${(r.ms / 1000).toFixed(1)} s`);
  }
  const plateau = pruned.bytesByDay[days - 1] / pruned.bytesByDay[Math.floor(days / 2) - 1];
  console.log(`with retention, size at day ${days} / size at day ${Math.floor(days / 2)}: ${plateau.toFixed(3)} (bounded: ~1); without: ${(kept.bytesByDay[days - 1] / kept.bytesByDay[Math.floor(days / 2) - 1]).toFixed(3)}`);
  console.log(`final size with retention / without: ${(pruned.bytesByDay[days - 1] / kept.bytesByDay[days - 1]).toFixed(3)}; bound per node: ${(pruned.bytesByDay[days - 1] / nodes / 1024).toFixed(2)} KiB`);
}
