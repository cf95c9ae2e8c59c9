// `nodecert agent`: the node daemon. SIGHUP reloads agent.yaml; SIGTERM finishes an in-flight install first.
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
      const load = () => loadYamlConfig(AgentConfig, o.config, { root: o.root });
      const agent = await runAgent({ config: load(), logger });
      logger.info("health endpoint", { url: `http://127.0.0.1:${agent.healthPort}/healthz` });
      process.on("SIGHUP", () => {
        try {
          agent.reload(load());
        } catch (e) {
          logger.error("configuration reload failed; keeping the previous configuration", { error: (e as Error).message });
        }
      });
      onShutdown(logger, () => agent.close());
    });
}
