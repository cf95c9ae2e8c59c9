// `nodecert server init` and `nodecert server run`.
import { promises as fs } from "node:fs";
import { randomBytes } from "node:crypto";
import type { Command } from "commander";
import { initServer } from "../server/init.js";
import { runServer, type RunningServer } from "../server/run.js";
import { createLogger, type Logger } from "../log.js";
import { loadYamlConfig } from "../config/load.js";
import { ServerConfig, parseListen } from "../config/server.js";
import { notifySystemd, type NotifyState } from "../agent/sd-notify.js";
import { serverPaths } from "../server/paths.js";
import { existsSync } from "node:fs";
import { ensureCryptoMode, cryptoReportFields, parseFipsMode } from "../crypto/fips-exec.js";
import { DEFAULT_SERVER_DIR, onShutdown } from "./common.js";

export function registerServer(program: Command): void {
  const server = program.command("server").description("the control plane: CA, tokens, approval policy, signer");
  server
    .command("init")
    .description("create the CA (or use a provided one), the server's TLS certificate and the admin certificate")
    .option("--dir <dir>", "server state directory", DEFAULT_SERVER_DIR)
    .option("--ca-cert <file>", "use this CA certificate (an intermediate: append its chain up to the root)")
    .option("--ca-key <file>", "private key of --ca-cert")
    .option("--listen <host:port>", "address to listen on (written to server.yaml)")
    .option("--san <name...>", "DNS names and IPs for the server's TLS certificate")
    .option("--api-server <url>", "the Kubernetes API server URL written into nodes' kubelet.conf")
    .option("--fips <mode>", "crypto provider: auto, on or off (written to server.yaml)")
    .option("--fips-provider-dir <dir>", "directory holding the OpenSSL FIPS provider (written to server.yaml)")
    .option("--allow-loopback-sans", "let nodes hold loopback serving SANs: one-host and test setups only (written to server.yaml)")
    .action(async (o: { dir: string; caCert?: string; caKey?: string; listen?: string; san?: string[]; apiServer?: string; fips?: string; fipsProviderDir?: string; allowLoopbackSans?: boolean }) => {
      const fips = o.fips === undefined ? undefined : parseFipsMode(o.fips);
      // The CA key is generated on the provider the server will run on.
      const existing = existsSync(serverPaths(o.dir).config) ? loadYamlConfig(ServerConfig, serverPaths(o.dir).config, { fips }) : undefined;
      await ensureCryptoMode(existing?.fips ?? fips ?? "auto", { providerDir: existing?.fipsProviderDir ?? o.fipsProviderDir });
      const r = await initServer({
        fips,
        fipsProviderDir: o.fipsProviderDir,
        dir: o.dir,
        caCertPem: o.caCert ? await fs.readFile(o.caCert, "utf8") : undefined,
        caKeyPem: o.caKey ? await fs.readFile(o.caKey, "utf8") : undefined,
        listen: o.listen,
        sans: o.san,
        apiServerUrl: o.apiServer,
        allowLoopbackSans: o.allowLoopbackSans,
        now: new Date(),
        random: (n) => randomBytes(n),
      });
      process.stdout.write(
        `${r.createdCa ? "Created" : "Kept existing"} CA in ${r.paths.caDir}\n` +
          `CA pin: ${r.pin}\n\n` +
          `Start the server:  nodecert server run --dir ${r.paths.dir}\n` +
          `Create a token:    nodecert token create --dir ${r.paths.dir}\n` +
          `Join a node:       nodecert join --server ${r.serverUrl} --token <token> --ca-cert-hash ${r.pin}\n`,
      );
    });
  server
    .command("run")
    .description("serve the control plane API (TLS 1.3 only)")
    .option("--dir <dir>", "server state directory", DEFAULT_SERVER_DIR)
    .option("--listen <host:port>", "address to listen on (overrides server.yaml)")
    .option("--fips <mode>", "crypto provider: auto, on or off (overrides fips in server.yaml)")
    .action(async (o: { dir: string; listen?: string; fips?: string }) => {
      const logger = createLogger({ component: "server" });
      const config = loadYamlConfig(ServerConfig, serverPaths(o.dir).config, { fips: o.fips });
      // Before anything else: this may re-execute the process on the FIPS provider.
      const crypto = await ensureCryptoMode(config.fips, { providerDir: config.fipsProviderDir });
      logger.info("crypto provider", cryptoReportFields(crypto));
      const s = await runServer({ dir: o.dir, listen: o.listen, logger });
      onShutdown(logger, async () => {
        await reportToSystemd(logger, { stopping: true, status: "stopping" });
        await s.close();
      });
      // The unit is Type=notify: without READY=1 systemd kills the server at TimeoutStartSec and
      // restarts it, forever. Sent only now that it listens (CA, keys and database loaded).
      await reportToSystemd(logger, { ready: true, status: await statusLine(s) });
    });
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
