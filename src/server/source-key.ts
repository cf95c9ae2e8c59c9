// Who a request comes from, for rate limits and connection caps. Pure.
//
// An address string is not a source: on a dual-stack listener "::ffff:127.0.0.1" is 127.0.0.1,
// and one IPv6 host usually holds a whole /64 (SLAAC, privacy addresses), so keying by the /128
// would hand it 2^64 budgets.
import { isIP } from "node:net";

export const DEFAULT_IPV6_SOURCE_PREFIX = 64;

/** The eight 16-bit groups of an IPv6 address (zone id dropped), or undefined if it is not one. */
export function ipv6Groups(addr: string): number[] | undefined {
  const a = addr.replace(/%.*$/, "");
  if (isIP(a) !== 6) return undefined;
  let head = a;
  const tail: number[] = [];
  // An embedded IPv4 tail ("::ffff:10.0.0.1") is two groups.
  const v4 = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (v4) {
    const o = v4[2].split(".").map(Number);
    tail.push((o[0] << 8) | o[1], (o[2] << 8) | o[3]);
    head = v4[1].endsWith("::") ? v4[1] : v4[1].slice(0, -1);
  }
  const parse = (s: string) => (s === "" ? [] : s.split(":").map((g) => parseInt(g, 16)));
  const want = 8 - tail.length;
  let groups: number[];
  if (head.includes("::")) {
    const [l, r] = head.split("::");
    const left = parse(l);
    const right = parse(r);
    groups = [...left, ...new Array(want - left.length - right.length).fill(0), ...right];
  } else {
    groups = parse(head);
  }
  groups = [...groups, ...tail];
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined;
}

/**
 * The rate-limit key for a peer address: IPv4 as is (also when it arrives IPv4-mapped), IPv6 as
 * its first `ipv6Prefix` bits in CIDR form ("2001:db8:1:2::/64"). Anything else is its own key.
 */
export function sourceKey(addr: string | undefined, ipv6Prefix = DEFAULT_IPV6_SOURCE_PREFIX): string {
  if (!addr) return "unknown";
  if (isIP(addr) === 4) return addr;
  const g = ipv6Groups(addr);
  if (!g) return addr;
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) {
    return `${g[6] >> 8}.${g[6] & 0xff}.${g[7] >> 8}.${g[7] & 0xff}`;
  }
  const bits = Math.max(0, Math.min(128, Math.floor(ipv6Prefix)));
  const masked = g.map((x, i) => {
    const keep = Math.max(0, Math.min(16, bits - i * 16));
    return keep === 0 ? 0 : x & (0xffff << (16 - keep)) & 0xffff;
  });
  // Canonical text (RFC 5952 via URL), so equal prefixes give equal keys.
  const text = new URL(`http://[${masked.map((x) => x.toString(16)).join(":")}]/`).hostname.slice(1, -1);
  return `${text}/${bits}`;
}
