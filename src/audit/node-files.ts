// The files a kubeadm node's audit reads, found under a root: the kubelet's unit and drop-ins,
// the --config and --kubeconfig they name (kubeadm's defaults otherwise), the kubelet
// configuration, and nodecert's own layout. Reads only; never follows a path out of the root.
import { promises as fs } from "node:fs";
import path from "node:path";
import YAML from "yaml";

export const KUBELET_UNITS = [
  "etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
  "usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf",
  "lib/systemd/system/kubelet.service",
  "usr/lib/systemd/system/kubelet.service",
  "etc/systemd/system/kubelet.service",
];

export interface FileFacts {
  path: string;
  /** Permission bits (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  isDirectory: boolean;
}

export async function stat(p: string): Promise<FileFacts | undefined> {
  try {
    const s = await fs.stat(p);
    return { path: p, mode: s.mode & 0o7777, uid: s.uid, gid: s.gid, isDirectory: s.isDirectory() };
  } catch {
    return undefined;
  }
}

export interface KubeletFiles {
  root: string;
  units: FileFacts[];
  unitText: string;
  configPath: string;
  config: FileFacts | undefined;
  /** The parsed KubeletConfiguration (undefined when missing or not YAML). */
  configDoc: Record<string, unknown> | undefined;
  configError?: string;
  kubeconfigPath: string;
  kubeconfig: FileFacts | undefined;
}

/** A path the kubelet would read, inside the root. */
export function underRoot(root: string, p: string): string {
  return path.join(root, path.resolve("/", p));
}

/** The value of a kubelet flag in the unit files (--flag=value or --flag value), if set. */
export function unitFlag(unitText: string, flag: string): string | undefined {
  const m = new RegExp(`(?<![\\w-])--${flag}(?:=|\\s+)("[^"]*"|\\S+)`).exec(unitText);
  return m ? m[1].replace(/^"|"$/g, "") : undefined;
}

export async function kubeletFiles(root: string): Promise<KubeletFiles> {
  const units: FileFacts[] = [];
  let unitText = "";
  for (const u of KUBELET_UNITS) {
    const f = await stat(path.join(root, u));
    if (!f || f.isDirectory) continue;
    units.push(f);
    unitText += (await fs.readFile(f.path, "utf8").catch(() => "")) + "\n";
  }
  const configPath = underRoot(root, unitFlag(unitText, "config") ?? "/var/lib/kubelet/config.yaml");
  const kubeconfigPath = underRoot(root, unitFlag(unitText, "kubeconfig") ?? "/etc/kubernetes/kubelet.conf");
  const config = await stat(configPath);
  let configDoc: Record<string, unknown> | undefined;
  let configError: string | undefined;
  if (config) {
    try {
      const parsed: unknown = YAML.parse(await fs.readFile(configPath, "utf8"));
      if (parsed && typeof parsed === "object") configDoc = parsed as Record<string, unknown>;
      else configError = "it is not a YAML mapping";
    } catch (e) {
      configError = (e as Error).message.split("\n")[0];
    }
  }
  return { root, units, unitText, configPath, config, configDoc, configError, kubeconfigPath, kubeconfig: await stat(kubeconfigPath) };
}

/** A nested field of the kubelet configuration, e.g. get(doc, "authentication", "x509", "clientCAFile"). */
export function get(doc: Record<string, unknown> | undefined, ...keys: string[]): unknown {
  let v: unknown = doc;
  for (const k of keys) v = v && typeof v === "object" ? (v as Record<string, unknown>)[k] : undefined;
  return v;
}

export const octal = (mode: number) => mode.toString(8).padStart(3, "0");
/** "600 or more restrictive": no bit outside `max`. */
export const atMost = (f: FileFacts, max: number) => (f.mode & ~max & 0o7777) === 0;
export const rootOwned = (f: FileFacts) => f.uid === 0 && f.gid === 0;
export const rel = (root: string, p: string) => "/" + path.relative(root, p);
