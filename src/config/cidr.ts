// CIDR parsing for configuration and policy: "address/prefix" into a node:net BlockList.
import { BlockList, isIP } from "node:net";

export function blockList(cidrs: string[], where: string): BlockList {
  const bl = new BlockList();
  for (const c of cidrs) {
    const [net, bits, extra] = c.split("/");
    const family = isIP(net) === 6 ? "ipv6" : isIP(net) === 4 ? "ipv4" : undefined;
    const prefix = Number(bits);
    const max = family === "ipv6" ? 128 : 32;
    if (!family || extra !== undefined || bits === undefined || !/^\d+$/.test(bits) || prefix > max) throw new Error(`invalid CIDR "${c}" in ${where}: use address/prefix, e.g. 10.0.0.0/8 or fd00::/8`);
    bl.addSubnet(net, prefix, family);
  }
  return bl;
}

/** Whether a CIDR string is valid (address/prefix). */
export function cidrProblem(c: string): string | undefined {
  try {
    blockList([c], "the request");
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}
