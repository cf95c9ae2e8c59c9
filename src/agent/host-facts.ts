// The host facts the agent reports with join and renew: FQDN, machine id, distribution, kernel,
// architecture. Read directly from the files and calls systemd and the kernel define for them
// (os-release(5), machine-id(5), uname) plus `hostname --fqdn`, the same sources
// systeminformation read through a shell. That library stayed resident in the daemon (~0.7 MB of
// code, ~3 MiB RSS) for one read per process; this is what it did for these six fields.
import { execFile } from "node:child_process";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";

export interface HostFacts {
  fqdn?: string;
  machineId?: string;
  distro?: string;
  release?: string;
  kernel?: string;
  arch?: string;
}

export interface HostFactSources {
  /** Where etc/os-release, etc/machine-id, ... are looked up (default "/"; tests use a temp root). */
  root?: string;
  /** Runs `hostname --fqdn`; resolves undefined when it fails. */
  hostnameFqdn?: () => Promise<string | undefined>;
  kernel?: () => string;
  arch?: () => string;
}

/** os-release(5): KEY=value lines, values optionally quoted, backslash escapes inside quotes. */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2];
    const q = v[0];
    if ((q === '"' || q === "'") && v.endsWith(q) && v.length >= 2) {
      v = v.slice(1, -1);
      if (q === '"') v = v.replace(/\\([$"\\`])/g, "$1");
    }
    out[m[1].toUpperCase()] = v;
  }
  return out;
}

/** distro and release as systeminformation derived them (NAME; VERSION without its codename). */
export function distroOf(r: Record<string, string>): { distro?: string; release?: string } {
  const distro = r.DISTRIB_ID || r.NAME || undefined;
  let version = r.VERSION ?? "";
  const pretty = r.PRETTY_NAME ?? "";
  if (distro && pretty.startsWith(distro + " ")) version = pretty.slice(distro.length + 1).trim();
  if (version.includes("(")) version = version.split("(")[0].trim();
  return { distro, release: version || r.DISTRIB_RELEASE || r.VERSION_ID || undefined };
}

const readFirst = async (files: string[]): Promise<string | undefined> => {
  for (const f of files) {
    const t = await fs.readFile(f, "utf8").catch(() => undefined);
    if (t !== undefined) return t;
  }
  return undefined;
};

function hostnameFqdn(): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile("hostname", ["--fqdn"], { timeout: 5000 }, (err, stdout) => resolve(err ? undefined : stdout.split("\n")[0].trim() || undefined));
  });
}

export async function readHostFacts(s: HostFactSources = {}): Promise<HostFacts> {
  const root = s.root ?? "/";
  const at = (p: string) => path.join(root, p);
  const [osRelease, lsbRelease, machineId, fqdn] = await Promise.all([
    readFirst([at("etc/os-release"), at("usr/lib/os-release")]),
    readFirst([at("etc/lsb-release")]),
    readFirst([at("var/lib/dbus/machine-id"), at("etc/machine-id")]),
    (s.hostnameFqdn ?? hostnameFqdn)(),
  ]);
  const { distro, release } = distroOf({ ...parseOsRelease(osRelease ?? ""), ...parseOsRelease(lsbRelease ?? "") });
  return {
    fqdn: fqdn ?? os.hostname(),
    machineId: machineId?.trim() || undefined,
    distro,
    release,
    kernel: (s.kernel ?? os.release)(),
    arch: (s.arch ?? os.arch)(),
  };
}
