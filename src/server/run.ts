// Starts the control plane from its directory: config, CA, store, HTTPS API.
import { promises as fs } from "node:fs";
import { randomBytes } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { loadYamlConfig } from "../config/load.js";
import { ServerConfig, parseListen } from "../config/server.js";
import type { Logger } from "../log.js";
import { loadCa, type LoadedCa } from "./ca.js";
import { serverPaths, type ServerPaths } from "./paths.js";
import { SqliteStore } from "./store/sqlite.js";
import type { Store } from "./store/store.js";
import { buildApi } from "./api.js";

export interface RunOptions {
  dir: string;
  listen?: string;
  logger: Logger;
  clock?: () => Date;
  random?: (n: number) => Uint8Array;
  /** Overrides parts of server.yaml (tests). */
  configOverrides?: Record<string, unknown>;
}

export interface RunningServer {
  app: FastifyInstance;
  url: string;
  port: number;
  paths: ServerPaths;
  config: ServerConfig;
  ca: LoadedCa;
  store: Store;
  close(): Promise<void>;
}

export async function runServer(o: RunOptions): Promise<RunningServer> {
  const paths = serverPaths(o.dir);
  const config = loadYamlConfig(ServerConfig, paths.config, { ...(o.configOverrides ?? {}), listen: o.listen });
  const ca = await loadCa(paths);
  const store = new SqliteStore(paths.db);
  const tls = { certPem: await fs.readFile(paths.tlsCert, "utf8"), keyPem: await fs.readFile(paths.tlsKey, "utf8") };
  const app = await buildApi({
    config,
    ca,
    store,
    logger: o.logger,
    clock: o.clock ?? (() => new Date()),
    random: o.random ?? ((n) => randomBytes(n)),
    tls,
  });
  const { host, port } = parseListen(config.listen);
  try {
    await app.listen({ host, port });
  } catch (e) {
    await store.close();
    const err = e as NodeJS.ErrnoException;
    if (err.code === "EADDRINUSE") throw new Error(`cannot listen on ${config.listen}: the address is in use; stop the other process or pass --listen`);
    throw e;
  }
  const addr = app.server.address();
  const boundPort = typeof addr === "object" && addr ? addr.port : port;
  const urlHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
  o.logger.info("control plane listening", { listen: `${host}:${boundPort}`, caPin: ca.pin, tls: "TLSv1.3 only" });
  return {
    app,
    url: `https://${urlHost}:${boundPort}`,
    port: boundPort,
    paths,
    config,
    ca,
    store,
    async close() {
      await app.close();
      await store.close();
    },
  };
}
