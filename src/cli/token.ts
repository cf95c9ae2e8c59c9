// `nodecert token create` (admin, over mTLS).
import type { CliEnv } from "./env.js";
import { parseDuration } from "../config/duration.js";
import { adminRequest } from "./admin-client.js";

export interface TokenCreateOptions {
  dir: string;
  server?: string;
  ttl: string;
  node?: string;
  uses: string;
  description?: string;
  san?: string[];
  cidr?: string[];
}

export async function tokenCreate(env: CliEnv, o: TokenCreateOptions): Promise<void> {
  const uses = Number(o.uses);
  if (!Number.isInteger(uses) || uses < 1) throw new Error(`--uses must be a positive whole number, got "${o.uses}"`);
  const body = await adminRequest(o.dir, "/v1/admin/tokens", { ttlSeconds: Math.round(parseDuration(o.ttl) / 1000), node: o.node, uses, description: o.description, sans: o.san, cidrs: o.cidr }, o.server);
  env.stdout.write((body as { token: string }).token + "\n");
}
