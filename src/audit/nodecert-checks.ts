// nodecert's own part of the audit: its key files, directories and configuration (modes and
// owners), and facts about the installed certificates (expiry inside the danger window, key
// strength, serving SANs covering the node's addresses).
import { promises as fs } from "node:fs";
import path from "node:path";
import type { NodeLayout } from "../agent/layout.js";
import { certificateInfo, type CertificateInfo } from "../pki/certificate-info.js";
import { normalizeIp } from "../pki/names.js";
import { isIP } from "node:net";
import { atMost, octal, rel, rootOwned, stat, type FileFacts } from "./node-files.js";
import type { CheckResult } from "./report.js";

const S1 = "NC.1 nodecert files";
const S2 = "NC.2 nodecert certificates";

export interface NodecertAuditInput {
  layout: NodeLayout;
  /** agent.yaml and the token file it names, when present. */
  configFile?: string;
  tokenFile?: string;
  dangerWindowMs: number;
  /** The node's addresses and names the serving certificate must cover (none: MANUAL). */
  addresses: string[];
  now: Date;
}

type R = Omit<CheckResult, "section" | "id" | "text" | "type">;

async function certificateFiles(layout: NodeLayout): Promise<FileFacts[]> {
  const names = await fs.readdir(layout.pkiDir).catch(() => [] as string[]);
  const out: FileFacts[] = [];
  for (const n of names.sort()) {
    if (!/^kubelet-(client|server)-.*\.pem$/.test(n) || n.includes("-current")) continue;
    const f = await stat(path.join(layout.pkiDir, n));
    if (f && !f.isDirectory) out.push(f);
  }
  return out;
}

export async function nodecertChecks(i: NodecertAuditInput): Promise<CheckResult[]> {
  const { layout } = i;
  const root = layout.root;
  const out: CheckResult[] = [];
  const add = (id: string, section: string, text: string, r: R) => out.push({ id, section, text, type: "automated", ...r });
  const keys = await certificateFiles(layout);
  const notJoined: R = { status: "WARN", detail: `no kubelet-client-*/kubelet-server-* files in ${rel(root, layout.pkiDir)}`, remediation: "join the node: 'nodecert join'" };
  const list = (fs: FileFacts[], show: (f: FileFacts) => string) => fs.map((f) => `${rel(root, f.path)} ${show(f)}`).join(", ");

  const wideKeys = keys.filter((f) => !atMost(f, 0o600));
  add("NC.1.1", S1, "Ensure that the kubelet certificate and key files are set to 600 or more restrictive", !keys.length ? notJoined : wideKeys.length ? { status: "FAIL", detail: `${list(wideKeys, (f) => octal(f.mode))}: group or world can read the private key`, remediation: `chmod 600 ${wideKeys.map((f) => rel(root, f.path)).join(" ")}` } : { status: "PASS", detail: list(keys, (f) => octal(f.mode)), remediation: "" });

  const dirs = (await Promise.all([layout.pkiDir, layout.stateDir].map(stat))).filter((f): f is FileFacts => !!f);
  const wideDirs = dirs.filter((f) => !atMost(f, 0o700));
  add("NC.1.2", S1, "Ensure that nodecert's directories are set to 700 or more restrictive", !dirs.length ? notJoined : wideDirs.length ? { status: "FAIL", detail: `${list(wideDirs, (f) => octal(f.mode))}: group or world has access`, remediation: `chmod 700 ${wideDirs.map((f) => rel(root, f.path)).join(" ")}` } : { status: "PASS", detail: list(dirs, (f) => octal(f.mode)), remediation: "" });

  const state = await stat(layout.stateFile);
  const config = (await Promise.all([i.configFile, i.tokenFile].filter((p): p is string => !!p).map(stat))).filter((f): f is FileFacts => !!f);
  const wideConfig = [...config, ...(state ? [state] : [])].filter((f) => !atMost(f, 0o600));
  add("NC.1.3", S1, "Ensure that the nodecert agent configuration, token and state files are set to 600 or more restrictive", !config.length && !state ? { status: "WARN", detail: "no agent.yaml, token or state file found", remediation: "pass --config with the agent's configuration" } : wideConfig.length ? { status: "FAIL", detail: `${list(wideConfig, (f) => octal(f.mode))}: group or world has access`, remediation: `chmod 600 ${wideConfig.map((f) => rel(root, f.path)).join(" ")}` } : { status: "PASS", detail: list([...config, ...(state ? [state] : [])], (f) => octal(f.mode)), remediation: "" });

  const owned = [...keys, ...dirs, ...config, ...(state ? [state] : [])];
  const notRoot = owned.filter((f) => !rootOwned(f));
  add("NC.1.4", S1, "Ensure that nodecert's files and directories are owned by root:root", !owned.length ? notJoined : notRoot.length ? { status: "FAIL", detail: `${list(notRoot, (f) => `${f.uid}:${f.gid}`)}: not root:root`, remediation: `chown root:root ${notRoot.map((f) => rel(root, f.path)).join(" ")}` } : { status: "PASS", detail: `${owned.length} files and directories owned by 0:0`, remediation: "" });

  const infos: Partial<Record<"client" | "serving", CertificateInfo | string>> = {};
  for (const kind of ["client", "serving"] as const) {
    const pem = await fs.readFile(layout.current(kind), "utf8").catch(() => undefined);
    try {
      infos[kind] = pem ? certificateInfo(pem) : `${rel(root, layout.current(kind))} does not exist`;
    } catch (e) {
      infos[kind] = `${rel(root, layout.current(kind))} is not a certificate: ${(e as Error).message}`;
    }
  }
  const hours = (ms: number) => `${Math.round(ms / 3_600_000)}h`;
  for (const [id, kind] of [["NC.2.1", "client"], ["NC.2.2", "serving"]] as const) {
    const c = infos[kind];
    const text = `Ensure that the kubelet ${kind} certificate does not expire inside the danger window`;
    if (typeof c === "string" || !c) {
      add(id, S2, text, { status: "FAIL", detail: c ?? "missing", remediation: "join the node ('nodecert join') or restore the file" });
      continue;
    }
    const left = c.notAfter.getTime() - i.now.getTime();
    if (left <= 0) add(id, S2, text, { status: "FAIL", detail: `serial ${c.serial} expired at ${c.notAfter.toISOString()}`, remediation: kind === "client" ? "re-join the node with a bound bootstrap token ('nodecert token create --node <name>', then 'nodecert join')" : "'nodecert renew serving --force'" });
    else if (left < i.dangerWindowMs) add(id, S2, text, { status: "FAIL", detail: `serial ${c.serial} expires at ${c.notAfter.toISOString()}, in ${hours(left)}: inside the ${hours(i.dangerWindowMs)} danger window`, remediation: `renewals are not working: see 'nodecert status' for the last error, then 'nodecert renew ${kind} --force'` });
    else add(id, S2, text, { status: "PASS", detail: `serial ${c.serial} expires at ${c.notAfter.toISOString()} (in ${hours(left)}; danger window ${hours(i.dangerWindowMs)})`, remediation: "" });
  }

  const present = (["client", "serving"] as const).map((k) => [k, infos[k]] as const).filter((x): x is readonly ["client" | "serving", CertificateInfo] => typeof x[1] === "object");
  const weak = present.filter(([, c]) => !c.keyAlgorithm);
  add("NC.2.3", S2, "Ensure that the kubelet certificates use strong keys (RSA 2048 bits or more, ECDSA P-256/P-384, Ed25519)", !present.length ? notJoined : weak.length ? { status: "FAIL", detail: weak.map(([k, c]) => `${k}: ${c.keyDescription}`).join(", "), remediation: "rotate to a strong key: 'nodecert rotate --node <name> --key-algorithm ECDSA-P256' on the control plane" } : { status: "PASS", detail: present.map(([k, c]) => `${k}: ${c.keyAlgorithm}`).join(", "), remediation: "" });

  const serving = infos.serving;
  const text = "Ensure that the kubelet serving certificate covers the node's addresses and names";
  if (typeof serving !== "object") add("NC.2.4", S2, text, { status: "FAIL", detail: serving ?? "missing", remediation: "join the node ('nodecert join')" });
  else if (!i.addresses.length) add("NC.2.4", S2, text, { status: "MANUAL", detail: `the certificate holds DNS ${serving.sans.dns.join(", ") || "none"}; IP ${serving.sans.ip.join(", ") || "none"}`, remediation: "pass the node's addresses with --address (or set addresses.only in agent.yaml) to check them" });
  else {
    const missing = i.addresses.filter((a) => (isIP(a) ? !serving.sans.ip.includes(normalizeIp(a)) : !serving.sans.dns.includes(a.toLowerCase())));
    add("NC.2.4", S2, text, missing.length ? { status: "FAIL", detail: `not in the serving certificate: ${missing.join(", ")} (it holds DNS ${serving.sans.dns.join(", ") || "none"}; IP ${serving.sans.ip.join(", ") || "none"})`, remediation: `add them (agent.yaml addresses.extra, approved on the control plane with 'nodecert node approve-san <node> ${missing.join(" ")}'), then 'nodecert renew serving --force'` } : { status: "PASS", detail: `covers ${i.addresses.join(", ")}`, remediation: "" });
  }
  return out;
}
