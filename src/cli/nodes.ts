// `nodecert nodes` (admin, mTLS): every node the control plane knows.
import type { CliEnv } from "./env.js";
import { adminGet } from "./admin-client.js";
import { table } from "./table.js";
import { terminalJson } from "../platform/text.js";
import type { NodeView } from "../protocol/admin.js";

export interface NodesOptions {
  dir: string;
  server?: string;
  output: string;
}

export async function nodes(env: CliEnv, o: NodesOptions): Promise<void> {
  const { nodes } = (await adminGet(o.dir, "/v1/admin/nodes", o.server)) as { nodes: NodeView[] };
  if (o.output === "json") return void env.stdout.write(terminalJson({ nodes }) + "\n");
  const cert = (n: NodeView, k: string) => n.certificates.find((c) => c.kind === k);
  // Replicas (etcd store): which replica each agent's channel is open on.
  const replicas = nodes.some((n) => n.replica !== undefined);
  const rows = nodes.map((n) => [
        n.name,
        n.connected ? "yes" : "no",
        ...(replicas ? [n.replica ?? "-"] : []),
        n.lastSeen.replace("T", " ").replace(/\.\d+Z$/, "Z"),
        cert(n, "client")?.notAfter.replace(/T.*/, "") ?? "-",
        cert(n, "serving")?.notAfter.replace(/T.*/, "") ?? "-",
        cert(n, "client")?.keyAlgorithm ?? "-",
        n.agentVersion ?? "-",
        n.fips === undefined ? "-" : n.fips ? "yes" : "no",
        n.evicted ? "evicted" : "active",
      ]);
  env.stdout.write(table(["NODE", "CONNECTED", ...(replicas ? ["REPLICA"] : []), "LAST SEEN", "CLIENT EXPIRES", "SERVING EXPIRES", "KEY", "AGENT", "FIPS", "STATE"], rows));
}
