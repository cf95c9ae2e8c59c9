// Installs verified certificates into the kubelet's layout, crash-safely.
import { promises as fs } from "node:fs";
import path from "node:path";
import type { CertKind } from "../pki/csr.js";
import type { NodeLayout } from "./layout.js";
import { ensureDir, exists, replaceSymlink, writeFileAtomic } from "../platform/files.js";
import { kubeletKubeconfig } from "./kubeconfig.js";

/** kubelet's own timestamp format for rotated files: 2006-01-02-15-04-05. */
export function fileTimestamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())}-${p(d.getUTCHours())}-${p(d.getUTCMinutes())}-${p(d.getUTCSeconds())}`;
}

export async function ensureNodeDirs(layout: NodeLayout): Promise<void> {
  await ensureDir(layout.pkiDir, 0o700);
  await ensureDir(layout.stateDir, 0o700);
  // /etc/kubernetes may already exist with the distribution's mode: create it if missing, leave it otherwise.
  for (const d of [path.dirname(layout.kubeconfig), layout.kubernetesPkiDir]) {
    if (!(await exists(d))) await ensureDir(d, 0o700);
  }
}

/**
 * Writes `<prefix>-<timestamp>.pem` (chain + key, 0600), then swaps `<prefix>-current.pem` to it.
 * Returns the new file's path. The previous file stays until pruned.
 */
export async function installPair(layout: NodeLayout, kind: CertKind, chainPem: string, keyPem: string, now: Date): Promise<string> {
  const base = `${layout.prefix(kind)}-${fileTimestamp(now)}`;
  let name = `${base}.pem`;
  for (let i = 1; await exists(path.join(layout.pkiDir, name)); i++) name = `${base}-${i}.pem`;
  const file = path.join(layout.pkiDir, name);
  await writeFileAtomic(file, chainPem.trimEnd() + "\n" + keyPem.trimEnd() + "\n", 0o600);
  // Relative target keeps the layout valid when the root is relocated (tests, snaps).
  await replaceSymlink(layout.current(kind), name);
  return file;
}

export async function installTrustBundle(layout: NodeLayout, bundlePem: string): Promise<void> {
  await writeFileAtomic(layout.caFile, bundlePem, 0o600);
}

export async function installKubeconfig(layout: NodeLayout, apiServer: string): Promise<void> {
  await writeFileAtomic(layout.kubeconfig, kubeletKubeconfig({ server: apiServer, caFile: layout.caFile, clientPem: layout.current("client") }), 0o600);
}

/** What reading a -current.pem found: the file, nothing (ENOENT), or an error that is not "missing". */
export type CurrentRead = { state: "present"; pem: string } | { state: "missing" } | { state: "unreadable"; errno: string; reason: string };

/**
 * Reads <kind>-current.pem and says which of the three it is. EACCES, EIO and the like are
 * "unreadable", never "missing": a node whose disk or permissions broke must not re-join with its
 * bootstrap token (that would start a new lineage) but say what is wrong.
 */
export async function readCurrentOutcome(layout: NodeLayout, kind: CertKind): Promise<CurrentRead> {
  try {
    return { state: "present", pem: await fs.readFile(layout.current(kind), "utf8") };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === "ENOENT") return { state: "missing" };
    return { state: "unreadable", errno: err.code ?? "EUNKNOWN", reason: `cannot read ${layout.current(kind)}: ${err.message}` };
  }
}

export async function readCurrent(layout: NodeLayout, kind: CertKind): Promise<string | undefined> {
  try {
    return await fs.readFile(layout.current(kind), "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}
