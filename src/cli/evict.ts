// `nodecert evict NODE` (admin, mTLS): the node can no longer renew or connect.
import type { CliEnv } from "./env.js";
import { adminRequest } from "./admin-client.js";

export interface EvictOptions {
  dir: string;
  server?: string;
  reason: string;
}

export async function evict(env: CliEnv, node: string, o: EvictOptions): Promise<void> {
  const r = (await adminRequest(o.dir, `/v1/admin/nodes/${encodeURIComponent(node)}/evict`, { reason: o.reason }, o.server)) as { evictedAt: string };
  env.stdout.write(`evicted ${node} at ${r.evictedAt}\n`);
}
