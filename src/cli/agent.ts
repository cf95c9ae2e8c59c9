// `nodecert agent`: the node daemon.
import type { Command } from "commander";
import { createLogger } from "../log.js";
import { loadYamlConfig } from "../config/load.js";
import { AgentConfig } from "../config/agent.js";
import { runAgent } from "../agent/daemon.js";
import { onShutdown } from "./common.js";

export function registerAgent(program: Command): void {
  program
    .command("agent")
    .description("run the node daemon")
    .option("--config <file>", "agent configuration", "/etc/nodecert/agent.yaml")
    .option("--root <dir>", "filesystem root (overrides the config)")
    .action(async (o: { config: string; root?: string }) => {
      const logger = createLogger({ component: "agent" });
      const config = loadYamlConfig(AgentConfig, o.config, { root: o.root });
      const agent = await runAgent({ config, logger });
      logger.info("health endpoint", { url: `http://${config.healthListen.replace(/:\d+$/, "")}:${agent.healthPort}/healthz` });
      onShutdown(logger, () => agent.close());
    });
}
