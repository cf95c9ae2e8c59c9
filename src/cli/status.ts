// `nodecert status`.
import type { Command } from "commander";
import { nodeLayout } from "../agent/layout.js";
import { certificateStatus, formatStatusTable, statusHealthy } from "../agent/status.js";

export function registerStatus(program: Command): void {
  program
    .command("status")
    .description("show the node's certificates; exits 1 if one is missing, expired or broken")
    .option("--root <dir>", "filesystem root", "/")
    .option("-o, --output <format>", "table or json", "table")
    .action(async (o: { root: string; output: string }) => {
      const rows = await certificateStatus(nodeLayout(o.root), new Date());
      if (o.output === "json") process.stdout.write(JSON.stringify({ certificates: rows }, null, 2) + "\n");
      else if (o.output === "table") process.stdout.write(formatStatusTable(rows));
      else throw new Error(`unknown output format "${o.output}": use table or json`);
      if (!statusHealthy(rows)) process.exitCode = 1;
    });
}
