// `nodecert join`: first contact with the control plane.
import type { Command } from "commander";
import { createLogger } from "../log.js";
import { cryptoReportFields, ensureCryptoMode, parseFipsMode } from "../crypto/fips-exec.js";
import { nodeLayout } from "../agent/layout.js";
import { nodeIdentity } from "../agent/identity.js";
import { join } from "../agent/join.js";
import { readState } from "../agent/state.js";
import { writeCryptoRecord } from "../agent/crypto-record.js";
import { parseKeyAlgorithm } from "../pki/key-algorithms.js";
import { certificateStatus, formatStatusTable, statusHealthy } from "../agent/status.js";

export function registerJoin(program: Command): void {
  program
    .command("join")
    .description("join this node: fetch and pin the CA, get kubelet certificates, install them")
    .requiredOption("--server <url>", "control plane URL, e.g. https://cp.example:9443")
    .requiredOption("--token <token>", "bootstrap token from 'nodecert token create'")
    .requiredOption("--ca-cert-hash <sha256:hex>", "CA pin printed by 'nodecert server init' (kubeadm's format)")
    .option("--root <dir>", "filesystem root for every path written", "/")
    .option("--node-name <name>", "node name (default: lowercased hostname)")
    .option("--key-algorithm <alg>", "ECDSA-P256, ECDSA-P384, RSA-2048, RSA-3072, RSA-4096 or Ed25519", "ECDSA-P256")
    .option("--address <ip...>", "use exactly these addresses instead of reading the interfaces")
    .option("--extra-san <name...>", "extra DNS names or IPs for the serving certificate")
    .option("--include-loopback", "also put loopback addresses in the serving certificate")
    .option("--fips <mode>", "crypto provider: auto, on or off", "auto")
    .option("--fips-provider-dir <dir>", "directory holding the OpenSSL FIPS provider (fips.so and fipsmodule.cnf)")
    .action(async (o: { server: string; token: string; caCertHash: string; root: string; nodeName?: string; keyAlgorithm: string; address?: string[]; extraSan?: string[]; includeLoopback?: boolean; fips: string; fipsProviderDir?: string }) => {
      const logger = createLogger({ component: "join", stream: process.stderr });
      // Before anything else: this may re-execute the process on the FIPS provider.
      const crypto = await ensureCryptoMode(parseFipsMode(o.fips), { providerDir: o.fipsProviderDir });
      logger.info("crypto provider", cryptoReportFields(crypto));
      const layout = nodeLayout(o.root);
      const existing = await readState(layout);
      if (existing && !existing.evicted && statusHealthy((await certificateStatus(layout, new Date())).filter((r) => !r.certificate.startsWith("ca")))) {
        process.stdout.write(`already joined as ${existing.nodeName} with valid certificates; nothing to do\n`);
        return;
      }
      const identity = await nodeIdentity({
        nodeName: o.nodeName,
        addresses: { includeLoopback: !!o.includeLoopback, includeLinkLocal: false, extra: o.extraSan ?? [], only: o.address },
      });
      await join({ server: o.server, token: o.token, caCertHash: o.caCertHash, layout, identity, keyAlgorithm: parseKeyAlgorithm(o.keyAlgorithm), now: () => new Date(), logger });
      await writeCryptoRecord(layout, crypto, new Date(), "join").catch((e: Error) => logger.warn("cannot record the crypto provider for 'nodecert status'", { error: e.message }));
      process.stdout.write(`joined as ${identity.nodeName}\n\n` + formatStatusTable(await certificateStatus(layout, new Date())));
    });
}
