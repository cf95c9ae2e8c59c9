// Fleet verbs (admin, mTLS): nodes, rotate, rotations, evict, ca rotate/status/advance.
import { promises as fs } from "node:fs";
import type { Command } from "commander";
import { adminGet, adminRequest } from "./admin-client.js";
import { DEFAULT_SERVER_DIR } from "./common.js";
import { parseKeyAlgorithm } from "../pki/key-algorithms.js";
import type { NodeView } from "../protocol/admin.js";
import type { CampaignStatus } from "../server/campaigns.js";
import type { CaRotationStatus } from "../server/ca-rotation.js";

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cols: string[]) => cols.map((c, i) => (c ?? "").padEnd(widths[i])).join("   ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n") + "\n";
}

const adminOptions = (c: Command) => c.option("--dir <dir>", "server state directory (holds the admin certificate)", DEFAULT_SERVER_DIR).option("--server <url>", "control plane URL (default: the one recorded at init)");

function campaignTable(s: CampaignStatus): string {
  const c = s.campaign;
  return (
    `CAMPAIGN ${c.id}  ${c.state}  max in flight ${c.maxInFlight}  ${c.which.join("+")}${c.keyAlgorithm ? ` → ${c.keyAlgorithm}` : ""}  reason: ${c.reason}\n` +
    `  done ${s.counts.done}, in flight ${s.counts["in-flight"]}, pending ${s.counts.pending}, failed ${s.counts.failed}\n` +
    table(
      ["NODE", "STATE", "ATTEMPTS", "DETAIL"],
      s.nodes.map((n) => [n.node, n.state, String(n.attempts), n.state === "done" ? `client ${n.serials?.client ?? "-"} serving ${n.serials?.serving ?? "-"}` : (n.lastError ?? "")]),
    )
  );
}

export function registerFleet(program: Command): void {
  adminOptions(program.command("nodes").description("every node the control plane knows: connected, last seen, certificates, agent, FIPS"))
    .option("-o, --output <format>", "table or json", "table")
    .action(async (o: { dir: string; server?: string; output: string }) => {
      const { nodes } = (await adminGet(o.dir, "/v1/admin/nodes", o.server)) as { nodes: NodeView[] };
      if (o.output === "json") return void process.stdout.write(JSON.stringify({ nodes }, null, 2) + "\n");
      const cert = (n: NodeView, k: string) => n.certificates.find((c) => c.kind === k);
      process.stdout.write(
        table(
          ["NODE", "CONNECTED", "LAST SEEN", "CLIENT EXPIRES", "SERVING EXPIRES", "KEY", "AGENT", "FIPS", "STATE"],
          nodes.map((n) => [
            n.name,
            n.connected ? "yes" : "no",
            n.lastSeen.replace("T", " ").replace(/\.\d+Z$/, "Z"),
            cert(n, "client")?.notAfter.replace(/T.*/, "") ?? "-",
            cert(n, "serving")?.notAfter.replace(/T.*/, "") ?? "-",
            cert(n, "client")?.keyAlgorithm ?? "-",
            n.agentVersion ?? "-",
            n.fips === undefined ? "-" : n.fips ? "yes" : "no",
            n.evicted ? "evicted" : "active",
          ]),
        ),
      );
    });

  adminOptions(program.command("rotate").description("start a rotation campaign: at most K nodes rotating at a time"))
    .option("--node <name...>", "nodes to rotate")
    .option("--all", "every node that is not evicted")
    .option("--max-in-flight <k>", "nodes rotating at once", "5")
    .option("--key-algorithm <alg>", "switch the nodes to this key algorithm")
    .option("--which <kinds>", "client, serving or all", "all")
    .option("--reason <text>", "why (kept with the campaign)", "rotation requested by an administrator")
    .action(async (o: { dir: string; server?: string; node?: string[]; all?: boolean; maxInFlight: string; keyAlgorithm?: string; which: string; reason: string }) => {
      if (!!o.all === !!o.node?.length) throw new Error("give --node NAME ... or --all");
      const which = o.which === "all" ? ["client", "serving"] : [o.which];
      const s = (await adminRequest(o.dir, "/v1/admin/campaigns", { nodes: o.node, all: !!o.all, maxInFlight: Number(o.maxInFlight), keyAlgorithm: o.keyAlgorithm ? parseKeyAlgorithm(o.keyAlgorithm) : undefined, which, reason: o.reason }, o.server)) as CampaignStatus;
      process.stdout.write(`started campaign ${s.campaign.id} for ${s.nodes.length} node(s); watch it with: nodecert rotations ${s.campaign.id}\n`);
    });

  adminOptions(program.command("rotations").description("rotation campaigns and their progress").argument("[id]", "one campaign"))
    .option("-o, --output <format>", "table or json", "table")
    .action(async (id: string | undefined, o: { dir: string; server?: string; output: string }) => {
      const body = id ? [(await adminGet(o.dir, `/v1/admin/campaigns/${encodeURIComponent(id)}`, o.server)) as CampaignStatus] : ((await adminGet(o.dir, "/v1/admin/campaigns", o.server)) as { campaigns: CampaignStatus[] }).campaigns;
      if (o.output === "json") return void process.stdout.write(JSON.stringify(id ? body[0] : { campaigns: body }, null, 2) + "\n");
      process.stdout.write(body.length ? body.map(campaignTable).join("\n") : "no campaigns\n");
    });

  adminOptions(program.command("evict").description("evict a node: it can no longer renew or connect").argument("<node>"))
    .option("--reason <text>", "why", "evicted by an administrator")
    .action(async (node: string, o: { dir: string; server?: string; reason: string }) => {
      const r = (await adminRequest(o.dir, `/v1/admin/nodes/${encodeURIComponent(node)}/evict`, { reason: o.reason }, o.server)) as { evictedAt: string };
      process.stdout.write(`evicted ${node} at ${r.evictedAt}\n`);
    });

  const ca = program.command("ca").description("the cluster CA");
  const printCa = (s: CaRotationStatus) => {
    const r = s.rotation;
    if (!r) return void process.stdout.write(`no CA rotation has run; the trust bundle holds ${s.bundleCertificates} CA certificate(s)\n`);
    process.stdout.write(
      `CA rotation ${r.id}: phase ${r.phase} (started ${r.startedAt}${r.finishedAt ? `, finished ${r.finishedAt}` : ""})\n` +
        `  old CA ${r.oldFingerprint.slice(0, 16)}…  new CA ${r.newFingerprint.slice(0, 16)}…  trust bundle: ${s.bundleCertificates} CA certificate(s)\n` +
        (r.campaignId ? `  re-issue campaign: ${r.campaignId}\n` : "") +
        (s.blockers.length ? `  blocking the next phase:\n${s.blockers.map((b) => `    - ${b}`).join("\n")}\n` : r.phase !== "done" ? "  nothing blocks the next phase\n" : "") +
        (r.forced.length ? `  forced: ${r.forced.join(" | ")}\n` : ""),
    );
  };
  adminOptions(ca.command("rotate").description("start a CA rotation (prepare → switch → finish); phases advance when nothing blocks them"))
    .option("--ca-cert <file>", "use this CA (with its chain) instead of generating one")
    .option("--ca-key <file>", "its private key")
    .action(async (o: { dir: string; server?: string; caCert?: string; caKey?: string }) => {
      const body = { caCertPem: o.caCert ? await fs.readFile(o.caCert, "utf8") : undefined, caKeyPem: o.caKey ? await fs.readFile(o.caKey, "utf8") : undefined };
      printCa((await adminRequest(o.dir, "/v1/admin/ca/rotate", body, o.server)) as CaRotationStatus);
    });
  adminOptions(ca.command("status").description("the phase of a CA rotation and which nodes block the next one")).action(async (o: { dir: string; server?: string }) => {
    printCa((await adminGet(o.dir, "/v1/admin/ca", o.server)) as CaRotationStatus);
  });
  adminOptions(ca.command("advance").description("move the CA rotation on; --force skips the nodes that block it"))
    .option("--force", "advance even though nodes block it")
    .action(async (o: { dir: string; server?: string; force?: boolean }) => {
      printCa((await adminRequest(o.dir, "/v1/admin/ca/advance", { force: !!o.force }, o.server)) as CaRotationStatus);
    });
}
