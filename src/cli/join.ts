// `nodecert join`: first contact with the control plane.
import type { CliEnv } from "./env.js";
import { cryptoReportFields, ensureCryptoMode, parseFipsMode } from "../crypto/fips-exec.js";
import { parseKeyAlgorithm } from "../pki/key-algorithms.js";
import { createLogger } from "../platform/log.js";
import { nodeLayout } from "../agent/layout.js";
import { configuredIdentity } from "../agent/identity.js";
import { protectTokenArgument, readBootstrapToken } from "../agent/token-source.js";
import { join } from "../agent/join.js";
import { NodeStore } from "../agent/node-store.js";
import { writeCryptoRecord } from "../agent/crypto-record.js";
import { certificateStatus, formatStatusTable, statusHealthy } from "../agent/status.js";

export interface JoinOptions {
  server: string;
  token?: string;
  tokenFile?: string;
  caCertHash: string;
  root: string;
  nodeName?: string;
  keyAlgorithm: string;
  address?: string[];
  extraSan?: string[];
  allInterfaces?: boolean;
  includeLoopback?: boolean;
  fips: string;
  fipsProviderDir?: string;
}

export async function joinNode(env: CliEnv, o: JoinOptions): Promise<void> {
  // First: a literal --token leaves argv (and a FIPS re-exec's argv) before anything else runs.
  protectTokenArgument(o, { env: env.env, warn: (m) => env.stderr.write(`warning: ${m}\n`) });
  // Before anything else: this may re-execute the process on the FIPS provider.
  const crypto = await ensureCryptoMode(parseFipsMode(o.fips), { providerDir: o.fipsProviderDir });
  const logger = createLogger({ component: "join", stream: env.stderr });
  logger.info("crypto provider", cryptoReportFields(crypto));
  const layout = nodeLayout(o.root);
  const store = new NodeStore(layout, { what: "nodecert join", logger });
  const existing = await store.read();
  if (existing && !existing.evicted && statusHealthy((await certificateStatus(layout, env.now())).filter((r) => !r.certificate.startsWith("ca")))) {
    env.stdout.write(`already joined as ${existing.nodeName} with valid certificates; nothing to do\n`);
    return;
  }
  const identity = await configuredIdentity({
    nodeName: () => o.nodeName,
    addresses: () => ({ source: o.allInterfaces ? "interfaces" : "connection", includeLoopback: !!o.includeLoopback, includeLinkLocal: false, extra: o.extraSan ?? [], only: o.address }),
    server: async () => o.server,
  })();
  const token = await readBootstrapToken(o, { env: env.env });
  await join({ server: o.server, token, caCertHash: o.caCertHash, layout, store, identity, keyAlgorithm: parseKeyAlgorithm(o.keyAlgorithm), now: () => env.now(), logger });
  await writeCryptoRecord(layout, crypto, env.now(), "join").catch((e: Error) => logger.warn("cannot record the crypto provider for 'nodecert status'", { error: e.message }));
  env.stdout.write(`joined as ${identity.nodeName}\n\n` + formatStatusTable(await certificateStatus(layout, env.now())));
}
