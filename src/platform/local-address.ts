// The local address this host uses to reach a URL: what the control plane sees as the source of
// our connections on a flat network, so it is the IP SAN the control plane will sign for us.
import dgram from "node:dgram";
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { normalizeIp } from "../pki/names.js";

/**
 * Asks the kernel which source address it would route from: a connected UDP socket takes one
 * without sending a packet. The host name resolves the way the HTTPS client resolves it.
 */
export async function localAddressToward(url: string): Promise<string> {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[|\]$/g, "");
  const port = Number(u.port || 443);
  const address = isIP(host) ? host : (await lookup(host)).address;
  const socket = dgram.createSocket(isIP(address) === 6 ? "udp6" : "udp4");
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.connect(port, address, () => resolve());
    });
    return normalizeIp(socket.address().address.replace(/%.*$/, ""));
  } finally {
    socket.close();
  }
}

/** Remembers the last answer per URL, so a passing DNS or routing hiccup does not change the SANs. */
export class ConnectionAddress {
  private readonly last = new Map<string, string>();

  constructor(private readonly probe: (url: string) => Promise<string> = localAddressToward) {}

  async toward(url: string | undefined): Promise<string | undefined> {
    if (!url) return undefined;
    try {
      const a = await this.probe(url);
      this.last.set(url, a);
      return a;
    } catch {
      return this.last.get(url);
    }
  }
}
