// Every nodecert verb, its arguments and options, declared with commander alone. A verb's code is
// imported only when that verb runs (one module per verb, built as its own chunk), so
// `nodecert --help`, `status` or `token create` never load the server, the agent daemon or the
// fleet channel. To add an option: declare it here, handle it in the verb's module.
import { Command } from "commander";
import { AGENT_VERSION } from "../version.js";
import type { CliEnv } from "./env.js";
import { DEFAULT_SERVER_DIR } from "./common.js";
import type { ServerInitOptions } from "./server-init.js";
import type { ServerRunOptions } from "./server-run.js";
import type { TokenCreateOptions } from "./token.js";
import type { JoinOptions } from "./join.js";
import type { StatusOptions } from "./status.js";
import type { AgentOptions } from "./agent.js";
import type { RenewOptions } from "./renew.js";
import type { NeedsRenewalOptions } from "./needs-renewal.js";
import type { NodesOptions } from "./nodes.js";
import type { RotateOptions } from "./rotate.js";
import type { RotationsOptions } from "./rotations.js";
import type { EvictOptions } from "./evict.js";
import type { CaAdvanceOptions, CaOptions, CaRotateOptions } from "./ca.js";
import type { MigrateOptions } from "./migrate.js";
import type { ConfigureOptions } from "./configure.js";
import type { NodeSansOptions } from "./node-sans.js";
import type { DashboardOptions } from "./dashboard.js";
import type { AuditLogExportOptions } from "./audit-log.js";

const DEFAULT_AGENT_CONFIG = "/etc/nodecert/agent.yaml";

export function buildProgram(env: CliEnv): Command {
  const program = new Command()
    .name("nodecert")
    .description("Kubernetes node certificate bootstrap agent and control plane")
    .version(AGENT_VERSION)
    .showHelpAfterError()
    .configureOutput({ writeOut: (s) => env.stdout.write(s), writeErr: (s) => env.stderr.write(s) });

  // --- control plane -------------------------------------------------------------------------
  const server = program.command("server").description("the control plane: CA, tokens, approval policy, signer");
  server
    .command("init")
    .description("create the CA (or use a provided one), the server's TLS certificate and the admin certificate")
    .option("--dir <dir>", "server state directory", DEFAULT_SERVER_DIR)
    .option("--ca-cert <file>", "use this CA certificate (an intermediate: append its chain up to the root)")
    .option("--ca-key <file>", "private key of --ca-cert")
    .option("--listen <host:port>", "address to listen on (written to server.yaml)")
    .option("--san <name...>", "DNS names and IPs for the server's TLS certificate")
    .option("--api-server <url>", "the Kubernetes API server URL written into nodes' kubelet.conf")
    .option("--fips <mode>", "crypto provider: auto, on or off (written to server.yaml)")
    .option("--fips-provider-dir <dir>", "directory holding the OpenSSL FIPS provider (written to server.yaml)")
    .option("--allow-loopback-sans", "let nodes hold loopback serving SANs: one-host and test setups only (written to server.yaml)")
    .action(async (o: ServerInitOptions) => (await import("./server-init.js")).serverInit(env, o));
  server
    .command("run")
    .description("serve the control plane API (TLS 1.3 only)")
    .option("--dir <dir>", "server state directory", DEFAULT_SERVER_DIR)
    .option("--listen <host:port>", "address to listen on (overrides server.yaml)")
    .option("--fips <mode>", "crypto provider: auto, on or off (overrides fips in server.yaml)")
    .action(async (o: ServerRunOptions) => (await import("./server-run.js")).serverRun(env, o));

  const token = program.command("token").description("bootstrap tokens for joining nodes");
  adminOptions(token.command("create").description("create a bootstrap token and print it"))
    .option("--ttl <duration>", "how long the token is valid", "24h")
    .option("--node <name>", "bind the token to this node name")
    .option("--uses <n>", "how many joins it allows", "1")
    .option("--description <text>", "a note stored with the token")
    .option("--san <name-or-ip...>", "with --node: serving SANs the node may hold once it joins")
    .option("--cidr <cidr...>", "with --node: CIDRs whose addresses the node may hold as IP SANs")
    .action(async (o: TokenCreateOptions) => (await import("./token.js")).tokenCreate(env, o));

  // --- node ----------------------------------------------------------------------------------
  program
    .command("join")
    .description("join this node: fetch and pin the CA, get kubelet certificates, install them")
    .requiredOption("--server <url>", "control plane URL, e.g. https://cp.example:9443")
    .option("--token-file <file>", "file holding the bootstrap token from 'nodecert token create' (or: --token -, or NODECERT_TOKEN)")
    .option("--token <token>", "'-' reads the bootstrap token from stdin (a literal token here is visible to other users in ps)")
    .requiredOption("--ca-cert-hash <sha256:hex>", "CA pin printed by 'nodecert server init' (kubeadm's format)")
    .option("--root <dir>", "filesystem root for every path written", "/")
    .option("--node-name <name>", "node name (default: lowercased hostname)")
    .option("--key-algorithm <alg>", "ECDSA-P256, ECDSA-P384, RSA-2048, RSA-3072, RSA-4096 or Ed25519", "ECDSA-P256")
    .option("--address <ip...>", "use exactly these addresses (default: the local address of the connection to the server)")
    .option("--extra-san <name...>", "extra DNS names or IPs for the serving certificate (signed only where the control plane approved them)")
    .option("--all-interfaces", "ask for every interface address, the host name and FQDN instead")
    .option("--include-loopback", "with --all-interfaces: also loopback addresses")
    .option("--fips <mode>", "crypto provider: auto, on or off", "auto")
    .option("--fips-provider-dir <dir>", "directory holding the OpenSSL FIPS provider (fips.so and fipsmodule.cnf)")
    .action(async (o: JoinOptions) => (await import("./join.js")).joinNode(env, o));

  program
    .command("status")
    .description("show the node's certificates; exits 1 if one is missing, expired or broken")
    .option("--root <dir>", "filesystem root (default: from --config, else /)")
    .option("--config <file>", "agent configuration (for root and stateDir)", DEFAULT_AGENT_CONFIG)
    .option("-o, --output <format>", "table or json", "table")
    .action(async (o: StatusOptions) => (await import("./status.js")).status(env, o));

  program
    .command("agent")
    .description("run the node daemon")
    .option("--config <file>", "agent configuration", DEFAULT_AGENT_CONFIG)
    .option("--root <dir>", "filesystem root (overrides the config)")
    .option("--fips <mode>", "crypto provider: auto, on or off (overrides fips in the config)")
    .action(async (o: AgentOptions) => (await import("./agent.js")).agent(env, o));

  program
    .command("renew")
    .description("renew now through the running agent (or one-shot when none runs); without --force only what is due")
    .argument("[which]", "client, serving or all", "all")
    .option("--force", "renew even if not due")
    .option("--config <file>", "agent configuration", DEFAULT_AGENT_CONFIG)
    .option("--root <dir>", "filesystem root (overrides the config)")
    .action(async (which: string, o: RenewOptions) => (await import("./renew.js")).renew(env, which, o));

  program
    .command("needs-renewal")
    .description("exit 0 when a renewal is due, 1 when not, 2 when a certificate is missing or cannot be read")
    .option("--config <file>", "agent configuration", DEFAULT_AGENT_CONFIG)
    .option("--root <dir>", "filesystem root (overrides the config)")
    .action(async (o: NeedsRenewalOptions) => (await import("./needs-renewal.js")).needsRenewal(env, o));

  // --- fleet (admin, mTLS) -------------------------------------------------------------------
  adminOptions(program.command("nodes").description("every node the control plane knows: connected, last seen, certificates, agent, FIPS"))
    .option("-o, --output <format>", "table or json", "table")
    .action(async (o: NodesOptions) => (await import("./nodes.js")).nodes(env, o));

  adminOptions(program.command("rotate").description("start a rotation campaign: at most K nodes rotating at a time"))
    .option("--node <name...>", "nodes to rotate")
    .option("--all", "every node that is not evicted")
    .option("--max-in-flight <k>", "nodes rotating at once", "5")
    .option("--key-algorithm <alg>", "switch the nodes to this key algorithm")
    .option("--which <kinds>", "client, serving or all", "all")
    .option("--reason <text>", "why (kept with the campaign)", "rotation requested by an administrator")
    .option("--wait", "follow the campaign until it ends; exit 0 all done, 2 some failed, 3 cancelled, 4 --timeout passed")
    .option("--timeout <duration>", "with --wait: stop waiting after this long (e.g. 30m)")
    .option("--interval <duration>", "with --wait: how often to check", "1s")
    .action(async (o: RotateOptions) => (await import("./rotate.js")).rotate(env, o));

  adminOptions(program.command("rotations").description("rotation campaigns and their progress").argument("[id]", "one campaign"))
    .option("-o, --output <format>", "table or json", "table")
    .option("--cancel", "cancel campaign <id>: no further node is rotated; nodes keep the certificates they have")
    .action(async (id: string | undefined, o: RotationsOptions) => (await import("./rotations.js")).rotations(env, id, o));

  adminOptions(program.command("evict").description("evict a node: it can no longer renew or connect").argument("<node>"))
    .option("--reason <text>", "why", "evicted by an administrator")
    .action(async (node: string, o: EvictOptions) => (await import("./evict.js")).evict(env, node, o));

  adminOptions(program.command("dashboard").description("the fleet dashboard: a loopback web server that talks to the control plane with the admin certificate"))
    .option("--listen <host:port>", "loopback address to serve the dashboard on", "127.0.0.1:8080")
    .option("--open", "open the dashboard in a browser (with a URL that works once)")
    .option("--refresh <duration>", "how often the fleet is read again while a page is open (campaigns: every second)", "5s")
    .action(async (o: DashboardOptions) => {
      await (await import("./dashboard.js")).dashboard(env, o);
    });

  const ca = program.command("ca").description("the cluster CA");
  adminOptions(ca.command("rotate").description("start a CA rotation (prepare → switch → finish); phases advance when nothing blocks them"))
    .option("--ca-cert <file>", "use this CA (with its chain) instead of generating one")
    .option("--ca-key <file>", "its private key")
    .option("--wait", "follow the phases until the rotation is done; exit 0 done, 3 superseded, 4 --timeout passed")
    .option("--timeout <duration>", "with --wait: stop waiting after this long (e.g. 2h)")
    .option("--interval <duration>", "with --wait: how often to check", "1s")
    .action(async (o: CaRotateOptions) => (await import("./ca.js")).caRotate(env, o));
  adminOptions(ca.command("status").description("the phase of a CA rotation and which nodes block the next one")).action(async (o: CaOptions) => (await import("./ca.js")).caStatus(env, o));
  adminOptions(ca.command("advance").description("move the CA rotation on; --force skips the nodes that block it"))
    .option("--force", "advance even though nodes block it")
    .action(async (o: CaAdvanceOptions) => (await import("./ca.js")).caAdvance(env, o));

  const node = program.command("node").description("the serving SANs a node may hold (see the approval policy in the README)");
  adminOptions(node.command("sans").description("what the node may hold, where each permission comes from, and what its live certificates hold").argument("<node>"))
    .option("-o, --output <format>", "table or json", "table")
    .action(async (name: string, o: NodeSansOptions) => (await import("./node-sans.js")).nodeSans(env, name, o));
  adminOptions(node.command("approve-san").description("let a node hold these serving SANs (DNS names, IPs, or CIDRs such as 10.0.4.0/24)").argument("<node>").argument("<san...>")).action(
    async (name: string, sans: string[], o: NodeSansOptions) => (await import("./node-sans.js")).approveSan(env, name, sans, o),
  );
  adminOptions(node.command("revoke-san").description("withdraw approvals (operator or token-bound) of serving SANs; live certificates stay valid until they expire").argument("<node>").argument("<san...>")).action(
    async (name: string, sans: string[], o: NodeSansOptions) => (await import("./node-sans.js")).revokeSan(env, name, sans, o),
  );

  const auditLog = program.command("audit-log").description("the control plane's audit trail");
  auditLog
    .command("export")
    .description("write audit events as JSON lines, oldest first (retention prunes old ones after archiving them)")
    .option("--dir <dir>", "server directory", DEFAULT_SERVER_DIR)
    .option("--before <when>", "only events older than this: an ISO time, or a duration such as 400d")
    .option("-o, --output <file>", "write to this file (mode 0600) instead of stdout")
    .action(async (o: AuditLogExportOptions) => (await import("./audit-log.js")).auditLogExport(env, o));

  // --- packaging -----------------------------------------------------------------------------
  program
    .command("migrate")
    .description("migrate agent state and server database to this release's schema")
    .option("--config <file>", "agent configuration (its state is migrated when present)", DEFAULT_AGENT_CONFIG)
    .option("--server-dir <dir>", "server state directory (its database is migrated when present)")
    .action(async (o: MigrateOptions) => (await import("./migrate.js")).migrate(env, o));

  program
    .command("configure")
    .description("write a validated agent configuration; changes nothing if any value is invalid")
    .requiredOption("--out <file>", "agent.yaml to write (its current values are kept unless overridden)")
    .option("--server <url>", "control plane URL (https://...)")
    .option("--token <token>", "bootstrap token (stored in --token-file, 0600); '-' reads it from stdin, which keeps it out of ps")
    .option("--token-file <file>", "where the token goes (default: token beside --out)")
    .option("--ca-cert-hash <pin>", "CA pin: sha256:<64 hex>")
    .option("--fips <mode>", "auto, on or off")
    .option("--node-name <name>", "node name")
    .option("--root <dir>", "filesystem root for kubelet files")
    .option("--state-dir <dir>", "agent state directory")
    .action(async (o: ConfigureOptions) => (await import("./configure.js")).configure(env, o));

  return program;
}

/** The admin verbs reach the control plane with the admin certificate from `server init`. */
function adminOptions(c: Command): Command {
  return c.option("--dir <dir>", "server state directory (holds the admin certificate)", DEFAULT_SERVER_DIR).option("--server <url>", "control plane URL (default: the one recorded at init)");
}
