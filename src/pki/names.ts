// Kubernetes node identity names and SAN helpers. Pure.
import { isIP } from "node:net";

export const NODE_ORG = "system:nodes";
export const NODE_CN_PREFIX = "system:node:";
export const ADMIN_CN = "nodecert:admin";
export const ADMIN_ORG = "nodecert:admins";

export function nodeCommonName(nodeName: string): string {
  return NODE_CN_PREFIX + nodeName;
}

/** RFC 1123 subdomain as Kubernetes validates node names. */
export function dns1123SubdomainProblem(name: string): string | undefined {
  if (name.length === 0) return "node name is empty";
  if (name.length > 253) return `node name is ${name.length} characters long; at most 253 are allowed`;
  const label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
  for (const part of name.split(".")) {
    if (part.length > 63) return `label "${part}" is longer than 63 characters`;
    if (!label.test(part)) {
      return `"${name}" is not a DNS-1123 subdomain: use lowercase letters, digits, '-' and '.', starting and ending with an alphanumeric character`;
    }
  }
  return undefined;
}

export interface SanSet {
  dns: string[];
  ip: string[];
}

/** Sorts names into DNS and IP SANs; IPs are normalised so v6 forms compare equal. */
export function splitSans(names: string[]): SanSet {
  const dns = new Set<string>();
  const ip = new Set<string>();
  for (const n of names) {
    if (isIP(n)) ip.add(normalizeIp(n));
    else dns.add(n.toLowerCase());
  }
  return { dns: [...dns].sort(), ip: [...ip].sort() };
}

/**
 * The canonical form of an IP address: RFC 5952 for IPv6, and an IPv4-mapped IPv6 address
 * (::ffff:10.0.0.1, how a dual-stack socket reports an IPv4 peer) as the IPv4 address it maps,
 * so every check sees one spelling per address.
 */
export function normalizeIp(ip: string): string {
  if (isIP(ip) === 6) {
    // Expand then compress through URL parsing, which yields the canonical RFC 5952 form.
    const v6 = new URL(`http://[${ip}]/`).hostname.slice(1, -1);
    const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(v6);
    if (mapped) {
      const [hi, lo] = [parseInt(mapped[1], 16), parseInt(mapped[2], 16)];
      return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
    }
    return v6;
  }
  return ip;
}

export function sameSans(a: SanSet, b: SanSet): boolean {
  const key = (s: SanSet) => JSON.stringify([[...s.dns].sort(), [...s.ip].map(normalizeIp).sort()]);
  return key(a) === key(b);
}
