// `nodecert agent`: the node daemon. SIGHUP reloads agent.yaml; SIGTERM finishes an in-flight install first.
import type { CliEnv } from "./env.js";
import { loadYamlConfig } from "../config/load.js";
import { AgentConfig } from "../config/agent.js";
import { ensureCryptoMode, cryptoReportFields } from "../crypto/fips-exec.js";
import { assertKeyAlgorithmAllowed } from "../crypto/process.js";
import { onShutdown } from "./common.js";

export interface AgentOptions {
  config: string;
  root?: string;
  fips?: string;
}

/** The configured key algorithm must be one this process may generate (FIPS mode narrows it). */
function checkKeyAlgorithm(config: AgentConfig): AgentConfig {
  try {
    assertKeyAlgorithmAllowed(config.keyAlgorithm);
  } catch (e) {
    throw new Error(`keyAlgorithm ${config.keyAlgorithm} refused: ${(e as Error).message}`);
  }
  return config;
}

export async function agent(env: CliEnv, o: AgentOptions): Promise<void> {
  const load = () => loadYamlConfig(AgentConfig, o.config, { root: o.root, fips: o.fips });
  const first = load();
  // Before anything else: this may re-execute the process on the FIPS provider. Until it has
  // decided, nothing but the configuration is loaded, so a FIPS start costs little more than a
  // default one; the daemon's modules load after it.
  const crypto = await ensureCryptoMode(first.fips, { providerDir: first.fipsProviderDir });
  const [{ createLogger }, { runAgent }] = await Promise.all([import("../log.js"), import("../agent/daemon.js")]);
  const logger = createLogger({ component: "agent", stream: env.stdout });
  logger.info("crypto provider", cryptoReportFields(crypto));
  const running = await runAgent({ config: checkKeyAlgorithm(first), logger, cryptoReport: crypto });
  process.on("SIGHUP", () => {
    try {
      running.reload(checkKeyAlgorithm(load()));
    } catch (e) {
      logger.error("configuration reload failed; keeping the previous configuration", { error: (e as Error).message });
    }
  });
  onShutdown(logger, () => running.close());
  // Last: whoever waits for this line may signal us right away.
  logger.info("health endpoint", { url: `http://127.0.0.1:${running.healthPort}/healthz` });
}
