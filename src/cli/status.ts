// `nodecert status`.
import type { Command } from "commander";
import { existsSync } from "node:fs";
import { layoutFor, nodeLayout } from "../agent/layout.js";
import { certificateStatus, formatCryptoLines, formatStatusTable, statusHealthy } from "../agent/status.js";
import { readCryptoRecord } from "../agent/crypto-record.js";
import { loadYamlConfig } from "../config/load.js";
import { AgentConfig } from "../config/agent.js";
import { terminalJson } from "../platform/text.js";

export function registerStatus(program: Command): void {
  program
    .command("status")
    .description("show the node's certificates; exits 1 if one is missing, expired or broken")
    .option("--root <dir>", "filesystem root (default: from --config, else /)")
    .option("--config <file>", "agent configuration (for root and stateDir)", "/etc/nodecert/agent.yaml")
    .option("-o, --output <format>", "table or json", "table")
    .action(async (o: { root?: string; config: string; output: string }) => {
      const config = existsSync(o.config) ? loadYamlConfig(AgentConfig, o.config, { root: o.root }) : undefined;
      const layout = config ? layoutFor(config) : nodeLayout(o.root ?? "/");
      const rows = await certificateStatus(layout, new Date());
      const crypto = await readCryptoRecord(layout);
      if (o.output === "json") process.stdout.write(terminalJson({ certificates: rows, crypto: crypto ?? null }) + "\n");
      else if (o.output === "table") process.stdout.write(formatStatusTable(rows) + formatCryptoLines(crypto, layout.cryptoFile));
      else throw new Error(`unknown output format "${o.output}": use table or json`);
      if (!statusHealthy(rows)) process.exitCode = 1;
    });
}
