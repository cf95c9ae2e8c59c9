// Keeps the newest N timestamped files per kind; never removes the one `current` points to.
import { promises as fs } from "node:fs";
import path from "node:path";
import type { CertKind } from "../pki/csr.js";
import type { NodeLayout } from "./layout.js";

/** Orders kubelet-style names by timestamp, then by the collision suffix (-1, -2, ...). */
export function timestampedFiles(names: string[], prefix: string): string[] {
  const re = new RegExp(`^${prefix}-(\\d{4}-\\d\\d-\\d\\d-\\d\\d-\\d\\d-\\d\\d)(?:-(\\d+))?\\.pem$`);
  return names
    .map((n) => ({ n, m: re.exec(n) }))
    .filter((x): x is { n: string; m: RegExpExecArray } => x.m !== null)
    .sort((a, b) => (a.m[1] === b.m[1] ? Number(a.m[2] ?? 0) - Number(b.m[2] ?? 0) : a.m[1] < b.m[1] ? -1 : 1))
    .map((x) => x.n);
}

export async function pruneOld(layout: NodeLayout, kind: CertKind, keep: number): Promise<string[]> {
  const names = timestampedFiles(await fs.readdir(layout.pkiDir), layout.prefix(kind));
  const current = await fs.readlink(layout.current(kind)).catch(() => undefined);
  const doomed = names.slice(0, Math.max(0, names.length - keep)).filter((n) => n !== current);
  for (const n of doomed) await fs.rm(path.join(layout.pkiDir, n), { force: true });
  return doomed;
}
