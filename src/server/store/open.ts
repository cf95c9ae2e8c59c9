// Opens the store server.yaml names: SQLite (the embedded default) or etcd (replicas). etcd's
// client (gRPC) loads only when configured.
import path from "node:path";
import type { StoreConfig } from "../../config/server.js";
import type { ServerPaths } from "../paths.js";
import type { Store } from "./store.js";
import type { StoreReadiness } from "./etcd.js";

export interface OpenedStore {
  store: Store;
  kind: StoreConfig["kind"];
  /** Whether the store answers now (SQLite: always). */
  readiness(): StoreReadiness;
}

export async function openStore(config: StoreConfig, paths: ServerPaths): Promise<OpenedStore> {
  if (config.kind === "sqlite") {
    const { SqliteStore } = await import("./sqlite.js");
    return { store: new SqliteStore(paths.db), kind: "sqlite", readiness: () => ({ ready: true }) };
  }
  const { EtcdStore } = await import("./etcd.js");
  const rel = (f: string) => path.resolve(paths.dir, f);
  const store = new EtcdStore({
    endpoints: config.endpoints,
    prefix: config.prefix,
    tls: { ca: rel(config.tls.ca), cert: rel(config.tls.cert), key: rel(config.tls.key) },
    requestTimeoutMs: config.requestTimeout,
    probeMs: config.probeInterval,
  });
  const first = await store.probe();
  if (!first.ready) {
    await store.close();
    throw new Error(`${first.reason}; check store.endpoints and store.tls in ${paths.config}, and that etcd has a quorum`);
  }
  return { store, kind: "etcd", readiness: () => store.readiness() };
}
