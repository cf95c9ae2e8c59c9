// Damaged agent state at start: rebuilt from what the node's files still say (state.json from the
// installed pairs, ca.crt from the server's pinned bundle), or named with the fix. Never touches a
// certificate: the kubelet keeps using the installed files whatever this finds.
import { promises as fs } from "node:fs";
import path from "node:path";
import YAML from "yaml";
import type { CertKind } from "../pki/csr.js";
import type { NodeLayout } from "./layout.js";
import { certificateInfo, EKU_CLIENT_AUTH, EKU_SERVER_AUTH } from "../pki/certificate-info.js";
import { privateKeyBlock, splitCertificates } from "../pki/pem.js";
import { chainProblems, keyMatchesCertificate } from "../pki/verify.js";
import { certificatePin, normalizePin } from "../pki/pin.js";
import { NODE_CN_PREFIX } from "../pki/names.js";
import { writeFileAtomic } from "../platform/files.js";
import { fileTimestamp, readCurrentOutcome } from "./install.js";
import { NewerStateError } from "./state-migrations.js";
import { parseStateText, STATE_SCHEMA_VERSION, writeState, type AgentState } from "./state.js";

export type RepairAction = "rebuilt" | "moved-aside" | "fetched" | "left";

export interface Repair {
  /** The damaged or missing file. */
  file: string;
  problem: string;
  action: RepairAction;
  /** What was done, or what the operator must do. */
  message: string;
}

export interface RepairOptions {
  server?: string;
  caCertHash?: string;
  now: Date;
  /** Fetches the CA whose key matches the pin (join's fetchPinnedBundle by default). */
  fetchPinnedCa?: (server: string, pin: string) => Promise<string>;
}

const EKU_FOR: Record<CertKind, string> = { client: EKU_CLIENT_AUTH, serving: EKU_SERVER_AUTH };

/** The pair behind <kind>-current.pem when it is whole and of the right kind. */
async function installedPair(layout: NodeLayout, kind: CertKind): Promise<{ pem: string; file: string } | undefined> {
  const read = await readCurrentOutcome(layout, kind);
  if (read.state !== "present") return undefined;
  const key = privateKeyBlock(read.pem);
  if (!key || !keyMatchesCertificate(read.pem, key)) return undefined;
  try {
    if (!certificateInfo(splitCertificates(read.pem)[0]).extendedKeyUsages.includes(EKU_FOR[kind])) return undefined;
  } catch {
    return undefined;
  }
  const target = await fs.readlink(layout.current(kind)).catch(() => path.basename(layout.current(kind)));
  return { pem: read.pem, file: path.resolve(layout.pkiDir, target) };
}

async function apiServerFromKubeconfig(layout: NodeLayout): Promise<string | undefined> {
  try {
    const doc = YAML.parse(await fs.readFile(layout.kubeconfig, "utf8")) as { clusters?: { cluster?: { server?: unknown } }[] };
    const server = doc?.clusters?.[0]?.cluster?.server;
    return typeof server === "string" ? server : undefined;
  } catch {
    return undefined;
  }
}

/** The pin of the CA in ca.crt that issued `leafPem`. */
async function pinFromTrust(layout: NodeLayout, leafPem: string, now: Date): Promise<string | undefined> {
  const bundle = await fs.readFile(layout.caFile, "utf8").catch(() => "");
  for (const ca of splitCertificates(bundle)) if (!chainProblems(leafPem, ca, now).length) return certificatePin(ca);
  return undefined;
}

/** state.json from the installed pairs; a reason when they do not say enough. */
async function rebuildState(layout: NodeLayout, o: RepairOptions, salvage: Record<string, unknown> | undefined): Promise<{ state: AgentState; from: string } | { missing: string }> {
  const client = await installedPair(layout, "client");
  if (!client) return { missing: `no usable client pair at ${layout.current("client")}` };
  const info = certificateInfo(splitCertificates(client.pem)[0]);
  if (!info.subjectCN?.startsWith(NODE_CN_PREFIX)) return { missing: `${client.file} is not a node certificate (subject "${info.subject}")` };
  const str = (v: unknown) => (typeof v === "string" && v ? v : undefined);
  const server = o.server ?? str(salvage?.server);
  if (!server) return { missing: "the server URL (set server in agent.yaml)" };
  const caPin = o.caCertHash ? normalizePin(o.caCertHash) : (str(salvage?.caPin) ?? (await pinFromTrust(layout, client.pem, o.now)));
  if (!caPin) return { missing: `the CA pin (set caCertHash in agent.yaml, or restore ${layout.caFile})` };
  const apiServer = (await apiServerFromKubeconfig(layout)) ?? str(salvage?.apiServer);
  if (!apiServer) return { missing: `the API server URL (${layout.kubeconfig} is missing or damaged)` };
  const certificates: AgentState["certificates"] = {};
  for (const kind of ["client", "serving"] as CertKind[]) {
    const pair = kind === "client" ? client : await installedPair(layout, kind);
    if (!pair) continue;
    const c = certificateInfo(splitCertificates(pair.pem)[0]);
    const mtime = await fs.stat(pair.file).then((s) => s.mtime, () => o.now);
    certificates[kind] = { serial: c.serial, notAfter: c.notAfter.toISOString(), file: pair.file, installedAt: mtime.toISOString() };
  }
  const state: AgentState = { schemaVersion: STATE_SCHEMA_VERSION, nodeName: info.subjectCN.slice(NODE_CN_PREFIX.length), server, caPin, apiServer, joinedAt: info.notBefore.toISOString(), certificates };
  // An eviction or a pushed key algorithm survives damage that left them readable.
  const evicted = salvage?.evicted as { at?: unknown; reason?: unknown } | undefined;
  if (str(evicted?.at) && str(evicted?.reason)) state.evicted = { at: evicted!.at as string, reason: evicted!.reason as string };
  if (str(salvage?.keyAlgorithm)) state.keyAlgorithm = salvage!.keyAlgorithm as string;
  return { state, from: Object.values(certificates).map((c) => c!.file).join(" and ") };
}

/** Checks state.json; rebuilds it when it is damaged or missing while certificates are installed. */
export async function repairStateFile(layout: NodeLayout, o: RepairOptions): Promise<Repair | undefined> {
  const file = layout.stateFile;
  let problem: string;
  let salvage: Record<string, unknown> | undefined;
  let text: string | undefined;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") return { file, problem: (e as Error).message, action: "left", message: `cannot read ${file}: ${(e as Error).message}; check its permissions and the disk` };
  }
  if (text === undefined) {
    // No state and no certificates is a node that has not joined yet: nothing is damaged.
    if (!(await installedPair(layout, "client"))) return undefined;
    problem = "missing while certificates are installed";
  } else {
    const parsed = parseStateText(text, file);
    if ("state" in parsed) return undefined;
    problem = parsed.problem;
    salvage = parsed.raw;
  }
  const rebuilt = await rebuildState(layout, o, salvage);
  let aside: string | undefined;
  if (text !== undefined) {
    aside = `${file}.damaged-${fileTimestamp(o.now)}`;
    await writeFileAtomic(aside, text, 0o600);
  }
  if ("state" in rebuilt) {
    await writeState(layout, rebuilt.state);
    return { file, problem, action: "rebuilt", message: `${file} was ${problem}; rebuilt it from ${rebuilt.from}${aside ? ` (the damaged copy is ${aside})` : ""}` };
  }
  if (text !== undefined) await fs.rm(file, { force: true });
  return {
    file,
    problem,
    action: aside ? "moved-aside" : "left",
    message: `${file} was ${problem} and cannot be rebuilt: ${rebuilt.missing} is needed${aside ? `; moved it to ${aside}` : ""}. Fix that and restart the agent, or join again ('nodecert join', or a token in tokenFile)`,
  };
}

/** A missing ca.crt is fetched again from the server and checked against the pin. */
export async function repairTrustBundle(layout: NodeLayout, o: RepairOptions & { state?: AgentState }): Promise<Repair | undefined> {
  const file = layout.caFile;
  if (!o.state?.certificates.client) return undefined;
  try {
    await fs.access(file);
    return undefined;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") return undefined;
  }
  const server = o.server ?? o.state.server;
  const pin = o.caCertHash ?? o.state.caPin;
  const fetchCa = o.fetchPinnedCa ?? (async (s: string, p: string) => (await import("./join.js")).fetchPinnedBundle(s, p));
  try {
    const ca = await fetchCa(server, pin);
    await writeFileAtomic(file, ca, 0o600);
    return { file, problem: "missing", action: "fetched", message: `${file} was missing; fetched the CA matching the pin ${normalizePin(pin)} from ${server}` };
  } catch (e) {
    return { file, problem: "missing", action: "left", message: `${file} is missing and could not be fetched from ${server} (${(e as Error).message}); retrying at the next check, or copy the cluster CA certificate there (its pin is ${normalizePin(pin)})` };
  }
}

/**
 * The daemon's one call: state.json at start, and ca.crt at start and before every check until it
 * is back (the server may be down when the agent starts). `repairs` is what was found and done.
 */
export async function startupRepairs(layout: NodeLayout, o: RepairOptions, log: { warn(m: string, f?: object): void; error(m: string, f?: object): void }) {
  const repairs: Repair[] = [];
  const report = (r: Repair | undefined) => {
    if (!r) return;
    repairs.push(r);
    if (r.action === "left") log.error("damaged agent state", { ...r });
    else log.warn("repaired agent state", { ...r });
  };
  try {
    report(await repairStateFile(layout, o));
  } catch (e) {
    if (e instanceof NewerStateError) throw e;
    // A read-only or full disk: the repair waits for the next start; the agent runs degraded.
    report({ file: layout.stateFile, problem: (e as Error).message, action: "left", message: `could not repair ${layout.stateFile}: ${(e as Error).message}` });
  }
  let trustPending = true;
  const beforeCheck = async (state: AgentState | undefined) => {
    if (!trustPending) return;
    const r = await repairTrustBundle(layout, { ...o, state });
    // Said once; retried quietly until it is fetched.
    if (r && (r.action !== "left" || !repairs.some((x) => x.file === r.file))) report(r);
    trustPending = r?.action === "left";
  };
  return { repairs, beforeCheck };
}
