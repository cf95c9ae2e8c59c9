// `nodecert agent`: the node daemon. SIGHUP reloads agent.yaml; SIGTERM finishes an in-flight install first.
import type { Command } from "commander";
import { createLogger } from "../log.js";
import { loadYamlConfig } from "../config/load.js";
import { AgentConfig } from "../config/agent.js";
import { runAgent } from "../agent/daemon.js";
import { ensureCryptoMode, cryptoReportFields } from "../crypto/fips-exec.js";
import { assertKeyAlgorithmAllowed } from "../crypto/process.js";
import { onShutdown } from "./common.js";

/** The configured key algorithm must be one this process may generate (FIPS mode narrows it). */
function checkKeyAlgorithm(config: AgentConfig): AgentConfig {
  try {
    assertKeyAlgorithmAllowed(config.keyAlgorithm);
  } catch (e) {
    throw new Error(`keyAlgorithm ${config.keyAlgorithm} refused: ${(e as Error).message}`);
  }
  return config;
}

export function registerAgent(program: Command): void {
  program
    .command("agent")
    .description("run the node daemon")
    .option("--config <file>", "agent configuration", "/etc/nodecert/agent.yaml")
    .option("--root <dir>", "filesystem root (overrides the config)")
    .option("--fips <mode>", "crypto provider: auto, on or off (overrides fips in the config)")
    .action(async (o: { config: string; root?: string; fips?: string }) => {
      const logger = createLogger({ component: "agent" });
      const load = () => loadYamlConfig(AgentConfig, o.config, { root: o.root, fips: o.fips });
      const first = load();
      // Before anything else: this may re-execute the process on the FIPS provider.
      const crypto = await ensureCryptoMode(first.fips, { providerDir: first.fipsProviderDir });
      logger.info("crypto provider", cryptoReportFields(crypto));
      const agent = await runAgent({ config: checkKeyAlgorithm(first), logger, cryptoReport: crypto });
      process.on("SIGHUP", () => {
        try {
          agent.reload(checkKeyAlgorithm(load()));
        } catch (e) {
          logger.error("configuration reload failed; keeping the previous configuration", { error: (e as Error).message });
        }
      });
      onShutdown(logger, () => agent.close());
      // Last: whoever waits for this line may signal us right away.
      logger.info("health endpoint", { url: `http://127.0.0.1:${agent.healthPort}/healthz` });
    });
}
