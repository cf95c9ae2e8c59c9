// `nodecert token create` (admin, over mTLS).
import type { Command } from "commander";
import { parseDuration } from "../config/duration.js";
import { adminRequest } from "./admin-client.js";
import { DEFAULT_SERVER_DIR } from "./common.js";

export function registerToken(program: Command): void {
  const token = program.command("token").description("bootstrap tokens for joining nodes");
  token
    .command("create")
    .description("create a bootstrap token and print it")
    .option("--dir <dir>", "server state directory (holds the admin certificate)", DEFAULT_SERVER_DIR)
    .option("--server <url>", "control plane URL (default: the one recorded at init)")
    .option("--ttl <duration>", "how long the token is valid", "24h")
    .option("--node <name>", "bind the token to this node name")
    .option("--uses <n>", "how many joins it allows", "1")
    .option("--description <text>", "a note stored with the token")
    .option("--san <name-or-ip...>", "with --node: serving SANs the node may hold once it joins")
    .option("--cidr <cidr...>", "with --node: CIDRs whose addresses the node may hold as IP SANs")
    .action(async (o: { dir: string; server?: string; ttl: string; node?: string; uses: string; description?: string; san?: string[]; cidr?: string[] }) => {
      const uses = Number(o.uses);
      if (!Number.isInteger(uses) || uses < 1) throw new Error(`--uses must be a positive whole number, got "${o.uses}"`);
      const body = await adminRequest(o.dir, "/v1/admin/tokens", { ttlSeconds: Math.round(parseDuration(o.ttl) / 1000), node: o.node, uses, description: o.description, sans: o.san, cidrs: o.cidr }, o.server);
      process.stdout.write((body as { token: string }).token + "\n");
    });
}
