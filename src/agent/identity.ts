// Who this node is: its name, addresses and facts. Interface reads are injected for tests.
import os from "node:os";
import { isIP } from "node:net";
import type { CryptoSummary, NodeFacts } from "../protocol/messages.js";
import { processCryptoSummary } from "../crypto/process.js";
import { normalizeIp } from "../pki/names.js";
import { ConnectionAddress } from "../platform/local-address.js";
import { readHostFacts, type HostFacts } from "./host-facts.js";

import { AGENT_VERSION } from "../version.js";

export { AGENT_VERSION };

export interface AddressOptions {
  /**
   * Where the serving certificate's IP SANs come from: "connection" (default), the local address
   * of this node's connection to the control plane, which is what the control plane sees and
   * signs; or "interfaces", every interface address (which the control plane signs only where an
   * operator approved them), with the host name and FQDN as DNS SANs.
   */
  source?: "connection" | "interfaces";
  /** Interfaces only: also loopback / link-local addresses. */
  includeLoopback: boolean;
  includeLinkLocal: boolean;
  /** Extra IPs or names to ask for (the control plane signs them only where an operator approved them). */
  extra: string[];
  /** Exactly these addresses, instead of the connection's or the interfaces'. */
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
  /** Informational for the control plane: nothing in it grants a SAN. */
  facts: NodeFacts;
  /** DNS names and IPs for the serving certificate: what this node asks the control plane to sign. */
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
  /** The local address of this node's connection to the control plane (source "connection"). */
  connectionAddress?: () => Promise<string | undefined>;
}): Promise<Identity> {
  const hostname = (o.hostname ?? os.hostname()).toLowerCase();
  const nodeName = (o.nodeName ?? defaultNodeName(hostname)).toLowerCase();
  const hf = await (o.facts ?? hostFacts)();
  const extraIps = o.addresses.extra.filter((x) => isIP(x)).map(normalizeIp);
  const extraNames = o.addresses.extra.filter((x) => !isIP(x)).map((n) => n.toLowerCase());
  const fromInterfaces = o.addresses.source === "interfaces";
  let own: string[];
  if (o.addresses.only || fromInterfaces) own = nodeAddresses(o.addresses, o.interfaces);
  else {
    const c = await o.connectionAddress?.();
    own = c ? [normalizeIp(c)] : [];
  }
  const addresses = [...new Set([...own, ...extraIps])];
  const fqdn = hf.fqdn?.toLowerCase();
  const names = [...new Set([nodeName, hostname, ...(fqdn && fqdn !== hostname ? [fqdn] : []), ...extraNames])];
  // By default ask only for what the control plane can grant: the node name (its authenticated
  // identity), plus what the operator configured. Host name and FQDN are facts, not grants.
  const servingNames = fromInterfaces ? names : [...new Set([nodeName, ...extraNames])];
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
    servingSans: [...servingNames, ...addresses],
  };
}

/**
 * How the agent reads its identity from its configuration: `server` says where the control plane
 * is (its connection's local address is the default IP SAN). One probe cache per agent.
 */
export function configuredIdentity(o: { nodeName: () => string | undefined; addresses: () => AddressOptions; server: () => Promise<string | undefined>; facts?: () => Promise<HostFacts> }): () => Promise<Identity> {
  const connection = new ConnectionAddress();
  return async () => nodeIdentity({ nodeName: o.nodeName(), addresses: o.addresses(), facts: o.facts, connectionAddress: async () => connection.toward(await o.server()) });
}
