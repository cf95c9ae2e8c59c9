// `nodecert server run`: the control plane daemon. Type=notify: READY=1 once it listens.
import type { CliEnv } from "./env.js";
import { createLogger, type Logger } from "../platform/log.js";
import { loadYamlConfig } from "../config/load.js";
import { ServerConfig, parseListen } from "../config/server.js";
import { notifySystemd, type NotifyState } from "../platform/sd-notify.js";
import { serverPaths } from "../server/paths.js";
import { ensureCryptoMode, cryptoReportFields } from "../crypto/fips-exec.js";
import type { RunningServer } from "../server/run.js";
import { onShutdown } from "./common.js";

export interface ServerRunOptions {
  dir: string;
  listen?: string;
  fips?: string;
}

export async function serverRun(env: CliEnv, o: ServerRunOptions): Promise<void> {
  const config = loadYamlConfig(ServerConfig, serverPaths(o.dir).config, { fips: o.fips });
  // Before anything else: this may re-execute the process on the FIPS provider, so the parent
  // loads no more than it needs to decide.
  const crypto = await ensureCryptoMode(config.fips, { providerDir: config.fipsProviderDir });
  const logger = createLogger({ component: "server", stream: env.stdout });
  logger.info("crypto provider", cryptoReportFields(crypto));
  // Signals are handled before the server starts: runServer logs "listening" as soon as it
  // listens, and whoever waits for that line may send SIGTERM before runServer returns.
  const starting = import("../server/run.js").then(({ runServer }) => runServer({ dir: o.dir, listen: o.listen, logger }));
  onShutdown(logger, async () => {
    await reportToSystemd(logger, { stopping: true, status: "stopping" });
    const started = await starting.catch(() => undefined);
    await started?.close();
  });
  const s = await starting;
  // The unit is Type=notify: without READY=1 systemd kills the server at TimeoutStartSec and
  // restarts it, forever. Sent only now that it listens (CA, keys and database loaded).
  await reportToSystemd(logger, { ready: true, status: await statusLine(s) });
}

/** What `systemctl status` shows: where it listens and how many nodes it manages. */
async function statusLine(s: RunningServer): Promise<string> {
  const nodes = (await s.store.listNodes()).filter((n) => !n.evictedAt).length;
  const { host } = parseListen(s.config.listen);
  return `listening on ${host.includes(":") ? `[${host}]` : host}:${s.port}, ${nodes} node${nodes === 1 ? "" : "s"}`;
}

/** Never fails the server: systemd-notify's absence or failure is logged. */
async function reportToSystemd(logger: Logger, state: NotifyState): Promise<void> {
  const r = await notifySystemd(state);
  if (r.outcome === "failed") logger.warn("could not report to systemd", { detail: r.detail, state: state.ready ? "ready" : state.stopping ? "stopping" : "status" });
  else if (r.outcome === "sent") logger.info(state.ready ? "reported ready to systemd" : "reported to systemd", { detail: r.detail });
}
