// `nodecert migrate`: upgrades agent state and server database to this release's schema
// (snap post-refresh, package upgrades). Refuses, changing nothing, state newer than it knows.
import type { Command } from "commander";
import { existsSync } from "node:fs";
import { loadYamlConfig } from "../config/load.js";
import { AgentConfig } from "../config/agent.js";
import { layoutFor } from "../agent/layout.js";
import { migrateStateFile, STATE_SCHEMA_VERSION } from "../agent/state.js";
import { serverPaths } from "../server/paths.js";
import { SqliteStore, SCHEMA_VERSION } from "../server/store/sqlite.js";

export function registerMigrate(program: Command): void {
  program
    .command("migrate")
    .description("migrate agent state and server database to this release's schema")
    .option("--config <file>", "agent configuration (its state is migrated when present)", "/etc/nodecert/agent.yaml")
    .option("--server-dir <dir>", "server state directory (its database is migrated when present)")
    .action(async (o: { config: string; serverDir?: string }) => {
      let did = false;
      if (existsSync(o.config)) {
        const layout = layoutFor(loadYamlConfig(AgentConfig, o.config));
        const applied = await migrateStateFile(layout);
        for (const a of applied) process.stdout.write(`agent state ${layout.stateFile}: ${a}\n`);
        if (!applied.length) process.stdout.write(`agent state ${layout.stateFile}: at schema v${STATE_SCHEMA_VERSION}, nothing to do\n`);
        did = true;
      }
      if (o.serverDir && existsSync(serverPaths(o.serverDir).db)) {
        const store = new SqliteStore(serverPaths(o.serverDir).db); // migrates on open, refuses newer
        await store.close();
        process.stdout.write(`server database ${serverPaths(o.serverDir).db}: at schema v${SCHEMA_VERSION}\n`);
        did = true;
      }
      if (!did) process.stdout.write("nothing to migrate: no agent configuration and no server database found\n");
    });
}
