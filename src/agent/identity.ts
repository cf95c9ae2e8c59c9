// Who this node is: its name, addresses and facts. Interface reads are injected for tests.
import os from "node:os";
import { isIP } from "node:net";
import type { CryptoSummary, NodeFacts } from "../protocol/messages.js";
import { processCryptoSummary } from "../crypto/process.js";
import { normalizeIp } from "../pki/names.js";
import { readHostFacts, type HostFacts } from "./host-facts.js";

import { AGENT_VERSION } from "../version.js";

export { AGENT_VERSION };

export interface AddressOptions {
  includeLoopback: boolean;
  includeLinkLocal: boolean;
  extra: string[];
  only?: string[];
}

type Interfaces = ReturnType<typeof os.networkInterfaces>;

/** Every address of every interface (os.networkInterfaces keeps all of them, unlike systeminformation). */
export function nodeAddresses(o: AddressOptions, interfaces: Interfaces = os.networkInterfaces()): string[] {
  if (o.only) return [...new Set(o.only.map(normalizeIp))];
  const out = new Set<string>();
  for (const list of Object.values(interfaces)) {
    for (const a of list ?? []) {
      if (a.internal && !o.includeLoopback) continue;
      const linkLocal = a.family === "IPv6" ? /^fe[89ab]/i.test(a.address) : a.address.startsWith("169.254.");
      if (linkLocal && !o.includeLinkLocal) continue;
      if (a.family === "IPv6" && a.scopeid) continue; // scoped addresses cannot go in a SAN
      out.add(normalizeIp(a.address));
    }
  }
  return [...out];
}

export function defaultNodeName(hostname: string = os.hostname()): string {
  return hostname.toLowerCase();
}

export type { HostFacts } from "./host-facts.js";

let cachedHostFacts: Promise<HostFacts> | undefined;

/** Read once per process (it runs `hostname --fqdn`). */
export function hostFacts(): Promise<HostFacts> {
  cachedHostFacts ??= readHostFacts();
  return cachedHostFacts;
}

export interface Identity {
  nodeName: string;
  facts: NodeFacts;
  /** DNS names and IPs for the serving certificate. */
  servingSans: string[];
}

export async function nodeIdentity(o: {
  nodeName?: string;
  addresses: AddressOptions;
  facts?: () => Promise<HostFacts>;
  hostname?: string;
  interfaces?: Interfaces;
  /** The crypto provider to report (default: this process's). */
  crypto?: () => CryptoSummary;
}): Promise<Identity> {
  const hostname = (o.hostname ?? os.hostname()).toLowerCase();
  const nodeName = (o.nodeName ?? defaultNodeName(hostname)).toLowerCase();
  const hf = await (o.facts ?? hostFacts)();
  const extraIps = o.addresses.extra.filter((x) => isIP(x)).map(normalizeIp);
  const extraNames = o.addresses.extra.filter((x) => !isIP(x)).map((n) => n.toLowerCase());
  const addresses = [...new Set([...nodeAddresses(o.addresses, o.interfaces), ...extraIps])];
  const fqdn = hf.fqdn?.toLowerCase();
  const names = [...new Set([nodeName, hostname, ...(fqdn && fqdn !== hostname ? [fqdn] : []), ...extraNames])];
  return {
    nodeName,
    facts: {
      hostname,
      fqdn: fqdn ?? undefined,
      names,
      machineId: hf.machineId,
      addresses,
      os: { platform: process.platform, distro: hf.distro, release: hf.release, kernel: hf.kernel, arch: hf.arch },
      agentVersion: AGENT_VERSION,
      crypto: (o.crypto ?? processCryptoSummary)(),
    },
    servingSans: [...names, ...addresses],
  };
}
