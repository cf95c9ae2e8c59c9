// `nodecert status`.
import { existsSync } from "node:fs";
import type { CliEnv } from "./env.js";
import { terminalJson } from "../platform/text.js";
import { layoutFor, nodeLayout } from "../agent/layout.js";
import { certificateStatus, formatCryptoLines, formatStatusTable, statusHealthy } from "../agent/status.js";
import { readCryptoRecord } from "../agent/crypto-record.js";
import { loadYamlConfig } from "../config/load.js";
import { AgentConfig } from "../config/agent.js";

export interface StatusOptions {
  root?: string;
  config: string;
  output: string;
}

export async function status(env: CliEnv, o: StatusOptions): Promise<void> {
  const config = existsSync(o.config) ? loadYamlConfig(AgentConfig, o.config, { root: o.root }) : undefined;
  const layout = config ? layoutFor(config) : nodeLayout(o.root ?? "/");
  const rows = await certificateStatus(layout, env.now());
  const crypto = await readCryptoRecord(layout);
  if (o.output === "json") env.stdout.write(terminalJson({ certificates: rows, crypto: crypto ?? null }) + "\n");
  else if (o.output === "table") env.stdout.write(formatStatusTable(rows) + formatCryptoLines(crypto, layout.cryptoFile));
  else throw new Error(`unknown output format "${o.output}": use table or json`);
  if (!statusHealthy(rows)) env.exitCode = 1;
}
