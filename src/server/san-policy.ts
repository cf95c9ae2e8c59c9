// Which serving SANs a node may hold, and which no node ever gets. Pure.
//
// A node's CSR and facts are its own claims, so they never grant a SAN. What it may hold comes
// from the control plane: its node name (the authenticated identity), the address its join came
// from, what an operator approved (a token's bound SANs, `nodecert node approve-san`, a
// policy.nodeGroups entry). Some SANs are refused whatever the source, each by its own rule:
// they would let a node impersonate the control plane, a cluster service or another node.
import { BlockList, isIP } from "node:net";
import { normalizeIp, type SanSet } from "../pki/names.js";
import type { SanGrant } from "./store/store.js";
import { blockList, cidrProblem } from "../config/cidr.js";

export interface NodeGroup {
  /** A regular expression matched against the whole node name. */
  nodes: string;
  /** IP SANs inside these CIDRs. */
  cidrs: string[];
  /** DNS SANs; "{node}" stands for the node name. */
  dnsNames: string[];
}

export interface SanPolicyConfig {
  /** The control plane's own names and addresses (server.yaml sans, listen host, apiServerUrl host). */
  controlPlane?: SanSet;
  /** The cluster's service CIDRs (kubernetes.default is the first address of the first). */
  serviceCidrs: string[];
  allowLoopbackSans: boolean;
  allowLinkLocalSans: boolean;
  nodeGroups: NodeGroup[];
}

export type SanKind = "dns" | "ip";

/** The SANs one node may hold, each with where the permission comes from. */
export interface AllowedSans {
  dns: Map<string, string>;
  ip: Map<string, string>;
  cidrs: { cidr: string; source: string }[];
}

/** Who else holds a SAN: another node's live serving certificate or its approval. */
export interface SanHolder {
  node: string;
  via: "certificate" | "approval" | "node-name";
}

/** What the policy needs to judge a node's serving SANs, gathered by the caller from its store. */
export interface SanContext {
  allowed: AllowedSans;
  /** Keyed by sanKey(kind, value); only holders other than the node itself. */
  heldByOthers: Map<string, SanHolder>;
}

export const sanKey = (kind: SanKind, value: string) => `${kind}:${value}`;

// CIDR parsing lives in config/ (server.yaml validates CIDRs with it); re-exported for the policy.
export { blockList, cidrProblem };

const family = (ip: string) => (isIP(ip) === 6 ? "ipv6" : "ipv4");
const inside = (bl: BlockList, ip: string) => bl.check(ip, family(ip));

const LOOPBACK = blockList(["127.0.0.0/8", "::1/128"], "loopback");
const UNSPECIFIED = blockList(["0.0.0.0/8", "::/128"], "unspecified");
const BROADCAST = blockList(["255.255.255.255/32"], "broadcast");
const MULTICAST = blockList(["224.0.0.0/4", "ff00::/8"], "multicast");
const LINK_LOCAL = blockList(["169.254.0.0/16", "fe80::/10"], "link-local");

export const isLoopbackIp = (ip: string) => inside(LOOPBACK, ip);
/** "localhost" and names under it (RFC 6761) always resolve to the loopback interface. */
export const isLoopbackName = (name: string) => name === "localhost" || name.endsWith(".localhost");

/** True for DNS names a client could take for an IP address: never signed as DNS SANs (nor retyped). */
export function ipShapedDnsName(name: string): boolean {
  if (isIP(name)) return true;
  const last = name.split(".").pop() ?? "";
  // No top-level domain is all digits (RFC 3696 §2), and resolvers read 0x.. labels as numbers.
  return /^[0-9]+$/.test(last) || /^0x[0-9a-f]*$/i.test(last);
}

/** kubernetes, kubernetes.default, kubernetes.default.svc[.cluster.local], and any <svc>.<ns>.svc[.<domain>] name. */
export function kubernetesServiceName(name: string): boolean {
  const labels = name.split(".");
  return labels[0] === "kubernetes" || (labels.length >= 3 && labels[2] === "svc");
}

/** Sorts configured names into DNS and IP the way an operator writes them in server.yaml. */
export function controlPlaneSans(o: { sans: string[]; listenHost?: string; apiServerUrl?: string }): SanSet {
  const dns = new Set<string>();
  const ip = new Set<string>();
  const add = (v: string | undefined) => {
    const s = v?.replace(/^\[|\]$/g, "").toLowerCase();
    if (!s) return;
    if (isIP(s)) ip.add(normalizeIp(s));
    else dns.add(s);
  };
  for (const s of o.sans) add(s);
  add(o.listenHost);
  if (o.apiServerUrl) add(new URL(o.apiServerUrl).hostname);
  return { dns: [...dns].sort(), ip: [...ip].sort() };
}

/** The permissions of one node, from the sources the control plane trusts. */
export function allowedSans(node: string, i: { joinAddress?: string; connectionAddress?: string; grants: SanGrant[]; nodeGroups: NodeGroup[] }): AllowedSans {
  const a: AllowedSans = { dns: new Map([[node, "node-name"]]), ip: new Map(), cidrs: [] };
  if (i.joinAddress && isIP(i.joinAddress)) a.ip.set(normalizeIp(i.joinAddress), "join-address");
  // The source of a renewal the node authenticated with its client certificate: observed by the
  // control plane, not claimed by the node, so an address change (DHCP) needs no operator.
  if (i.connectionAddress && isIP(i.connectionAddress) && !a.ip.has(normalizeIp(i.connectionAddress))) a.ip.set(normalizeIp(i.connectionAddress), "renewal-address");
  for (const g of i.grants) {
    if (g.kind === "dns" && !a.dns.has(g.value)) a.dns.set(g.value, g.source);
    else if (g.kind === "ip" && !a.ip.has(g.value)) a.ip.set(g.value, g.source);
    else if (g.kind === "cidr") a.cidrs.push({ cidr: g.value, source: g.source });
  }
  i.nodeGroups.forEach((group, n) => {
    if (!new RegExp(`^(?:${group.nodes})$`).test(node)) return;
    const source = `policy.nodeGroups[${n}]`;
    for (const d of group.dnsNames) {
      const name = d.replaceAll("{node}", node).toLowerCase();
      if (!a.dns.has(name)) a.dns.set(name, source);
    }
    for (const c of group.cidrs) a.cidrs.push({ cidr: c, source });
  });
  return a;
}

/** Where permission for this SAN comes from, or undefined when nothing grants it. */
export function sanSource(a: AllowedSans, kind: SanKind, value: string): string | undefined {
  if (kind === "dns") return a.dns.get(value);
  const direct = a.ip.get(value);
  if (direct) return direct;
  return a.cidrs.find((c) => inside(blockList([c.cidr], c.source), value))?.source;
}

export function describeAllowed(a: AllowedSans): string {
  const parts = [
    ...[...a.dns].map(([v, s]) => `${v} (${s})`),
    ...[...a.ip].map(([v, s]) => `${v} (${s})`),
    ...a.cidrs.map((c) => `${c.cidr} (${c.source})`),
  ];
  return parts.join(", ");
}

export interface SanRefusal {
  rule: string;
  reason: string;
}

interface AlwaysRefused {
  rule: string;
  dns?(name: string, c: SanPolicyConfig): string | undefined;
  ip?(ip: string, c: SanPolicyConfig): string | undefined;
}

// Loopback always means "this host", so with allowLoopbackSans it names no other machine: it is
// then exempt from the control-plane and other-node rules too (a test or a one-host setup).
export const loopbackExempt = (kind: SanKind, v: string, c: SanPolicyConfig) => c.allowLoopbackSans && (kind === "ip" ? isLoopbackIp(v) : isLoopbackName(v));

/** Refused whatever grants them, in this order; each has its own rule. */
export const ALWAYS_REFUSED: AlwaysRefused[] = [
  {
    rule: "serving-san-ip-shaped-dns",
    dns: (d) => (ipShapedDnsName(d) ? `DNS SAN "${d}" looks like an IP address; IP addresses are only signed as IP SANs (which the address checks apply to), never as names` : undefined),
  },
  {
    rule: "serving-san-unspecified",
    ip: (ip) => (inside(UNSPECIFIED, ip) ? `IP SAN ${ip} is an unspecified ("this network") address, which names no host` : undefined),
  },
  {
    rule: "serving-san-broadcast",
    ip: (ip) => (inside(BROADCAST, ip) ? `IP SAN ${ip} is the broadcast address, which names no host` : undefined),
  },
  {
    rule: "serving-san-multicast",
    ip: (ip) => (inside(MULTICAST, ip) ? `IP SAN ${ip} is a multicast address, which names a group, not this node` : undefined),
  },
  {
    rule: "serving-san-loopback",
    ip: (ip, c) => (!c.allowLoopbackSans && isLoopbackIp(ip) ? `IP SAN ${ip} is a loopback address (every host's own); set policy.allowLoopbackSans to allow it` : undefined),
    dns: (d, c) => (!c.allowLoopbackSans && isLoopbackName(d) ? `DNS SAN "${d}" is a loopback name (every host's own); set policy.allowLoopbackSans to allow it` : undefined),
  },
  {
    rule: "serving-san-link-local",
    ip: (ip, c) => (!c.allowLinkLocalSans && inside(LINK_LOCAL, ip) ? `IP SAN ${ip} is a link-local address, which names a different host on every link; set policy.allowLinkLocalSans to allow it` : undefined),
  },
  {
    rule: "serving-san-control-plane",
    dns: (d, c) => (!loopbackExempt("dns", d, c) && c.controlPlane?.dns.includes(d) ? `DNS SAN "${d}" is one of the control plane's own names (server.yaml sans, listen or apiServerUrl); no node may hold it` : undefined),
    ip: (ip, c) => (!loopbackExempt("ip", ip, c) && c.controlPlane?.ip.includes(ip) ? `IP SAN ${ip} is one of the control plane's own addresses (server.yaml sans, listen or apiServerUrl); no node may hold it` : undefined),
  },
  {
    rule: "serving-san-kubernetes-service",
    dns: (d) => (kubernetesServiceName(d) ? `DNS SAN "${d}" is a Kubernetes service name (kubernetes.default.svc, <service>.<namespace>.svc...); no node may hold it` : undefined),
  },
  {
    rule: "serving-san-service-cidr",
    ip: (ip, c) => (c.serviceCidrs.length && inside(blockList(c.serviceCidrs, "policy.serviceCidrs"), ip) ? `IP SAN ${ip} is inside the service CIDR (${c.serviceCidrs.join(", ")}), where cluster services live; no node may hold it` : undefined),
  },
];

export const OTHER_NODE_RULE = "serving-san-other-node";

/** The first always-refused rule `value` breaks, or one held by another node; undefined when none. */
export function refusedSan(kind: SanKind, value: string, c: SanPolicyConfig, heldByOthers?: Map<string, SanHolder>): SanRefusal | undefined {
  for (const r of ALWAYS_REFUSED) {
    const reason = kind === "dns" ? r.dns?.(value, c) : r.ip?.(value, c);
    if (reason) return { rule: r.rule, reason };
  }
  const holder = heldByOthers?.get(sanKey(kind, value));
  if (holder && !loopbackExempt(kind, value, c)) return { rule: OTHER_NODE_RULE, reason: otherNodeReason(kind, value, holder) };
  return undefined;
}

export function otherNodeReason(kind: SanKind, value: string, h: SanHolder): string {
  const what = kind === "dns" ? `DNS SAN "${value}"` : `IP SAN ${value}`;
  if (h.via === "node-name") return `${what} is the name of node "${h.node}"; one node cannot get a certificate for another's name`;
  const via = h.via === "certificate" ? "a live serving certificate" : "an operator approval";
  return `${what} is held by node "${h.node}" (${via}); one node cannot get a certificate for another's name or address (evicting "${h.node}", or revoking its approval, frees it)`;
}

/** Parses an operator-supplied SAN: a CIDR (has "/"), an IP, or a DNS name (lowercased). */
export function parseSanValue(raw: string): { kind: "dns" | "ip" | "cidr"; value: string } | { problem: string } {
  const v = raw.trim().toLowerCase();
  if (v.includes("/")) {
    const p = cidrProblem(v);
    return p ? { problem: p } : { kind: "cidr", value: v };
  }
  if (isIP(v)) return { kind: "ip", value: normalizeIp(v) };
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(v) || v.length > 253) return { problem: `"${raw}" is neither an IP address, a CIDR nor a DNS name` };
  return { kind: "dns", value: v };
}
