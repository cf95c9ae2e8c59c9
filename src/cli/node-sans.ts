// `nodecert node sans|approve-san|revoke-san` (admin, mTLS): the serving SANs a node may hold.
import type { CliEnv } from "./env.js";
import { adminGet, adminRequest } from "./admin-client.js";
import { table } from "./table.js";
import { escapeTerminal, terminalJson } from "../platform/text.js";
import type { NodeSansView } from "../protocol/admin.js";

export interface NodeSansOptions {
  dir: string;
  server?: string;
  output?: string;
}

export async function nodeSans(env: CliEnv, name: string, o: NodeSansOptions): Promise<void> {
  const v = (await adminGet(o.dir, `/v1/admin/nodes/${encodeURIComponent(name)}/sans`, o.server)) as NodeSansView;
  if (o.output === "json") return void env.stdout.write(terminalJson(v) + "\n");
  env.stdout.write(
    table(["SAN", "KIND", "SOURCE", "SINCE"], v.allowed.map((a) => [a.value, a.kind, a.source, a.createdAt ?? ""])) +
      `\nheld by live serving certificates: ${escapeTerminal([...v.held.dns, ...v.held.ip].join(", ") || "none")}\n`,
  );
}

export async function approveSan(env: CliEnv, name: string, sans: string[], o: NodeSansOptions): Promise<void> {
  const r = (await adminRequest(o.dir, `/v1/admin/nodes/${encodeURIComponent(name)}/sans`, { sans }, o.server)) as { approved: { kind: string; value: string }[] };
  env.stdout.write(`approved for ${name}: ${r.approved.map((a) => a.value).join(", ")}\n`);
}

export async function revokeSan(env: CliEnv, name: string, sans: string[], o: NodeSansOptions): Promise<void> {
  const r = (await adminRequest(o.dir, `/v1/admin/nodes/${encodeURIComponent(name)}/sans/revoke`, { sans }, o.server)) as { revoked: number };
  env.stdout.write(`revoked ${r.revoked} approval(s) of ${name}\n`);
}
