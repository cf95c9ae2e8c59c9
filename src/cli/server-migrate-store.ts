// `nodecert server migrate-store --from sqlite:PATH --to etcd`: copies a SQLite installation into
// the etcd store server.yaml configures (store.kind etcd), and verifies the counts.
import type { CliEnv } from "./env.js";
import { loadYamlConfig } from "../config/load.js";
import { ServerConfig } from "../config/server.js";
import { serverPaths } from "../server/paths.js";

export interface MigrateStoreOptions {
  dir: string;
  from: string;
  to: string;
}

export async function serverMigrateStore(env: CliEnv, o: MigrateStoreOptions): Promise<void> {
  const paths = serverPaths(o.dir);
  const m = /^sqlite:(.+)$/.exec(o.from);
  if (!m) throw new Error(`--from must be sqlite:PATH (the server's nodecert.db), not "${o.from}"`);
  if (o.to !== "etcd") throw new Error(`--to must be etcd (the store server.yaml's store section describes), not "${o.to}"`);
  const config = loadYamlConfig(ServerConfig, paths.config);
  if (config.store.kind !== "etcd") throw new Error(`${paths.config} has no etcd store: set store: { kind: etcd, endpoints, prefix, tls: { ca, cert, key } } first, then migrate, then start the replicas`);
  const { existsSync } = await import("node:fs");
  if (!existsSync(m[1])) throw new Error(`no SQLite database at ${m[1]}`);
  const { SqliteStore } = await import("../server/store/sqlite.js");
  const { openStore } = await import("../server/store/open.js");
  const { migrateSqliteToEtcd } = await import("../server/store/migrate-store.js");
  const from = new SqliteStore(m[1]);
  const opened = await openStore(config.store, paths);
  try {
    const r = await migrateSqliteToEtcd(from, opened.store as import("../server/store/etcd.js").EtcdStore, paths);
    for (const [k, c] of Object.entries(r.counts)) env.stdout.write(`${k.padEnd(14)} sqlite ${String(c.sqlite).padStart(7)}  etcd ${String(c.etcd).padStart(7)}${c.sqlite === c.etcd ? "" : "  MISMATCH"}\n`);
    if (!r.ok) throw new Error("the counts differ: the etcd copy is incomplete; do not start replicas on it (remove the prefix and retry)");
    env.stdout.write(`migrated ${m[1]} to etcd ${config.store.prefix} (${config.store.endpoints.join(", ")}): counts verified\n`);
  } finally {
    await from.close();
    await opened.store.close();
  }
}
