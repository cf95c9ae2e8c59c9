// `nodecert agent`: the node daemon. SIGHUP reloads agent.yaml; SIGTERM finishes an in-flight install first.
import type { CliEnv } from "./env.js";
import type { AgentConfig } from "../config/agent.js";
import { readYamlFile } from "../config/yaml-file.js";
import { FIPS_MODES, type FipsMode } from "../crypto/fips-mode.js";
import { ensureCryptoMode, cryptoReportFields } from "../crypto/fips-exec.js";
import { onShutdown } from "./common.js";

export interface AgentOptions {
  config: string;
  root?: string;
  fips?: string;
}

/**
 * fips and fipsProviderDir, read without the configuration schema when they are plainly valid;
 * undefined when only the full validation can say what is wrong.
 */
function fipsSettings(raw: unknown, flag: string | undefined): { mode: FipsMode; providerDir?: string } | undefined {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return undefined;
  const { fips, fipsProviderDir } = raw as Record<string, unknown>;
  const mode = flag ?? fips ?? "auto";
  if (!(FIPS_MODES as readonly unknown[]).includes(mode)) return undefined;
  if (fipsProviderDir !== undefined && (typeof fipsProviderDir !== "string" || fipsProviderDir === "")) return undefined;
  return { mode: mode as FipsMode, providerDir: fipsProviderDir };
}

/** agent.yaml, validated (imported on demand: the FIPS decision runs without the schema). */
async function loadConfig(o: AgentOptions): Promise<AgentConfig> {
  const [{ loadYamlConfig }, { AgentConfig }] = await Promise.all([import("../config/load.js"), import("../config/agent.js")]);
  return loadYamlConfig(AgentConfig, o.config, { root: o.root, fips: o.fips });
}

export async function agent(env: CliEnv, o: AgentOptions): Promise<void> {
  // Before anything else: this may re-execute the process on the FIPS provider. Deciding needs
  // only fips and fipsProviderDir, so this process reads them with the YAML parser alone; the
  // schema, the logger and the daemon load after, in whichever process goes on. A FIPS start
  // then costs little more than a default one (docs/BENCHMARKS.md). When the two settings are
  // not plainly valid, the full validation says what is wrong first.
  const quick = fipsSettings(readYamlFile(o.config), o.fips);
  const early = quick ? undefined : await loadConfig(o);
  const crypto = await ensureCryptoMode(quick?.mode ?? early!.fips, { providerDir: quick ? quick.providerDir : early!.fipsProviderDir });
  const [{ assertKeyAlgorithmAllowed }, { createLogger }, { runAgent }] = await Promise.all([import("../crypto/process.js"), import("../platform/log.js"), import("../agent/daemon.js")]);
  /** The configured key algorithm must be one this process may generate (FIPS mode narrows it). */
  const checkKeyAlgorithm = (config: AgentConfig): AgentConfig => {
    try {
      assertKeyAlgorithmAllowed(config.keyAlgorithm);
    } catch (e) {
      throw new Error(`keyAlgorithm ${config.keyAlgorithm} refused: ${(e as Error).message}`, { cause: e });
    }
    return config;
  };
  const first = early ?? (await loadConfig(o));
  const logger = createLogger({ component: "agent", stream: env.stdout });
  logger.info("crypto provider", cryptoReportFields(crypto));
  const running = await runAgent({ config: checkKeyAlgorithm(first), logger, cryptoReport: crypto });
  process.on("SIGHUP", () => {
    loadConfig(o)
      .then((next) => running.reload(checkKeyAlgorithm(next)))
      .catch((e: Error) => logger.error("configuration reload failed; keeping the previous configuration", { error: e.message }));
  });
  onShutdown(logger, () => running.close());
  // Last: whoever waits for this line may signal us right away.
  logger.info("health endpoint", { url: `http://127.0.0.1:${running.healthPort}/healthz` });
}
