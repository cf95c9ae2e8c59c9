// The `nodecert` command line.
import { Command } from "commander";
import { registerServer } from "./server.js";
import { registerToken } from "./token.js";
import { registerJoin } from "./join.js";
import { registerStatus } from "./status.js";
import { registerAgent } from "./agent.js";
import { registerRenew } from "./renew.js";
import { registerFleet } from "./fleet.js";
import { registerMigrate } from "./migrate.js";
import { registerConfigure } from "./configure.js";
import { AGENT_VERSION } from "../agent/identity.js";

const program = new Command()
  .name("nodecert")
  .description("Kubernetes node certificate bootstrap agent and control plane")
  .version(AGENT_VERSION)
  .showHelpAfterError();
registerServer(program);
registerToken(program);
registerJoin(program);
registerStatus(program);
registerAgent(program);
registerRenew(program);
registerFleet(program);
registerMigrate(program);
registerConfigure(program);

program.parseAsync(process.argv).catch((e: Error) => {
  process.stderr.write(`error: ${e.message}\n`);
  process.exit(1);
});
