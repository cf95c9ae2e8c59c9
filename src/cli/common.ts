// Shared CLI bits.
import type { Logger } from "../platform/log.js";

export const DEFAULT_SERVER_DIR = "/var/lib/nodecert-server";

/** Closes cleanly on SIGTERM/SIGINT (systemd stop, Ctrl-C). */
export function onShutdown(logger: Logger, close: () => Promise<void>): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info("shutting down", { signal });
    close()
      .then(() => process.exit(0))
      .catch((e) => {
        logger.error("shutdown failed", { error: (e as Error).message });
        process.exit(1);
      });
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}
