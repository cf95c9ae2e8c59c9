// `npm start`: the embedded default. A local control plane under ./.nodecert/server and one agent
// rooted at ./.nodecert/node, joined with a fresh token; prints the status table and stays up.
import path from "node:path";
import { existsSync, promises as fs } from "node:fs";
import { randomBytes } from "node:crypto";
import { createLogger } from "../platform/log.js";
import { initServer } from "../server/init.js";
import { runServer } from "../server/run.js";
import { runAgent } from "../agent/daemon.js";
import { AgentConfig } from "../config/agent.js";
import { certificateStatus, formatCryptoLines, formatStatusTable } from "../agent/status.js";
import { readCryptoRecord } from "../agent/crypto-record.js";
import { ensureCryptoMode, parseFipsMode } from "../crypto/fips-exec.js";
import { adminRequest } from "./admin-client.js";
import { onShutdown } from "./common.js";
import { writeFileAtomic, ensureDir } from "../platform/files.js";
import { NodeStore } from "../agent/node-store.js";
import { nodeLayout } from "../agent/layout.js";
import os from "node:os";

const base = path.resolve(process.env.NODECERT_HOME ?? ".nodecert");
const listen = process.env.NODECERT_LISTEN ?? "127.0.0.1:9443";
const healthListen = process.env.NODECERT_HEALTH_LISTEN ?? "127.0.0.1:10258";
const serverDir = path.join(base, "server");
const nodeRoot = path.join(base, "node");
const logger = createLogger({ component: "start", level: process.env.NODECERT_LOG_LEVEL ?? "warn" });

async function main(): Promise<void> {
  // On a FIPS host (or with NODECERT_FIPS=on) both roles run on the FIPS provider.
  const crypto = await ensureCryptoMode(parseFipsMode(process.env.NODECERT_FIPS ?? "auto"), { providerDir: process.env.NODECERT_FIPS_PROVIDER_DIR });
  await ensureDir(base, 0o700);
  // Server and agent share this host and talk over loopback, so the agent's serving certificate
  // holds 127.0.0.1: the one setup where loopback SANs make sense (allowLoopbackSans).
  const init = await initServer({ dir: serverDir, listen, sans: ["localhost", "127.0.0.1", "::1"], allowLoopbackSans: true, now: new Date(), random: (n) => randomBytes(n) });
  const server = await runServer({ dir: serverDir, listen, logger: createLogger({ component: "server", level: process.env.NODECERT_LOG_LEVEL ?? "warn" }) });
  const layout = nodeLayout(nodeRoot);
  const tokenFile = path.join(base, "join-token");
  if (!(await new NodeStore(layout, { what: "npm start" }).read())) {
    const { token } = (await adminRequest(serverDir, "/v1/admin/tokens", { ttlSeconds: 3600, uses: 1, description: "npm start" }, server.url)) as { token: string };
    await writeFileAtomic(tokenFile, token + "\n", 0o600);
  }
  const config = AgentConfig.parse({
    root: nodeRoot,
    server: server.url,
    caCertHash: init.pin,
    tokenFile: existsSync(tokenFile) ? tokenFile : undefined,
    nodeName: os.hostname().toLowerCase().replace(/[^a-z0-9.-]/g, "-"),
    // The default: the local address of the agent's connection to the server (127.0.0.1 here).
    addresses: { source: "connection", includeLoopback: false, includeLinkLocal: false, extra: [] },
    healthListen,
    // A demo must never restart a real kubelet on the developer's machine.
    hooks: [],
  });
  const agent = await runAgent({ config, logger: createLogger({ component: "agent", level: process.env.NODECERT_LOG_LEVEL ?? "warn" }), cryptoReport: crypto });
  await agent.joined;
  await fs.rm(tokenFile, { force: true }); // spent; no reason to keep a secret on disk
  process.stdout.write(
    `nodecert is running.\n` +
      `  control plane  ${server.url}  (state in ${serverDir}, CA pin ${init.pin})\n` +
      `  agent          node "${config.nodeName}" rooted at ${nodeRoot}, health at http://${healthListen.replace(/:\d+$/, "")}:${agent.healthPort}/healthz\n\n` +
      formatStatusTable(await certificateStatus(layout, new Date())) +
      formatCryptoLines(await readCryptoRecord(layout), layout.cryptoFile) +
      `\nCheck again with: ./bin/nodecert status --root ${path.relative(process.cwd(), nodeRoot) || nodeRoot}\nCtrl-C to stop.\n`,
  );
  onShutdown(logger, async () => {
    await agent.close();
    await server.close();
  });
}

main().catch((e: Error) => {
  process.stderr.write(`error: ${e.message}\n`);
  process.exit(1);
});
