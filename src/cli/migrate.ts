// `nodecert migrate`: upgrades agent state and server database to this release's schema
// (snap post-refresh, package upgrades). Refuses, changing nothing, state newer than it knows.
import type { CliEnv } from "./env.js";
import { existsSync } from "node:fs";
import { loadYamlConfig } from "../config/load.js";
import { AgentConfig } from "../config/agent.js";
import { layoutFor } from "../agent/layout.js";
import { NodeStore } from "../agent/node-store.js";
import { STATE_SCHEMA_VERSION } from "../agent/state-migrations.js";
import { serverPaths } from "../server/paths.js";

export interface MigrateOptions {
  config: string;
  serverDir?: string;
}

export async function migrate(env: CliEnv, o: MigrateOptions): Promise<void> {
  let did = false;
  if (existsSync(o.config)) {
    const layout = layoutFor(loadYamlConfig(AgentConfig, o.config));
    const applied = await new NodeStore(layout, { what: "nodecert migrate" }).migrate();
    for (const a of applied) env.stdout.write(`agent state ${layout.stateFile}: ${a}\n`);
    if (!applied.length) env.stdout.write(`agent state ${layout.stateFile}: at schema v${STATE_SCHEMA_VERSION}, nothing to do\n`);
    did = true;
  }
  if (o.serverDir && existsSync(serverPaths(o.serverDir).db)) {
    const { SqliteStore, SCHEMA_VERSION } = await import("../server/store/sqlite.js"); // a node without a server never loads SQLite
    const store = new SqliteStore(serverPaths(o.serverDir).db); // migrates on open, refuses newer
    await store.close();
    env.stdout.write(`server database ${serverPaths(o.serverDir).db}: at schema v${SCHEMA_VERSION}\n`);
    did = true;
  }
  if (!did) env.stdout.write("nothing to migrate: no agent configuration and no server database found\n");
}
