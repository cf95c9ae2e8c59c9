// The host facts the agent reports with join and renew: FQDN, machine id, distribution, release,
// kernel, architecture, read with systeminformation. It is loaded on the first read (a join or a
// renewal), not at start: an agent that is idle between renewals never needs it (issue 11), and
// its networkInterfaces() is never used (it blocks ~400 ms; identity.ts reads os.networkInterfaces).
export interface HostFacts {
  fqdn?: string;
  machineId?: string;
  distro?: string;
  release?: string;
  kernel?: string;
  arch?: string;
}

export async function readHostFacts(): Promise<HostFacts> {
  const si = (await import("systeminformation")).default;
  // Each read is best effort: a fact that cannot be read is left out, never a failed join.
  const [osInfo, uuid] = await Promise.all([si.osInfo().catch(() => undefined), si.uuid().catch(() => undefined)]);
  return { fqdn: osInfo?.fqdn || undefined, machineId: uuid?.os || undefined, distro: osInfo?.distro, release: osInfo?.release, kernel: osInfo?.kernel, arch: osInfo?.arch };
}
