// The server's /metrics on a listener of its own (plain HTTP, loopback by default), not on the
// mTLS API port: Prometheus needs no node or admin certificate to scrape it, and what it shows
// (counts, phases, node names, CA subjects; never a token, key or serial) stays on the host unless
// the operator moves metrics.listen to another address on purpose (then: a firewall, or a
// scraper's sidecar on the host). See the README's "Monitoring" section.
import type http from "node:http";
import { parseListen } from "../../config/listen.js";
import { close, createLocalServer, listen } from "../../platform/local-http.js";

export interface MetricsListener {
  port: number;
  close(): Promise<void>;
}

export async function startMetricsListener(listenOn: string, render: () => Promise<{ contentType: string; body: string }>): Promise<MetricsListener> {
  const server: http.Server = createLocalServer(
    {
      "GET /metrics": async () => {
        const m = await render();
        return { body: m.body, contentType: m.contentType };
      },
    },
    { bodyLimit: 1024 },
  );
  const { host, port } = parseListen(listenOn);
  await listen(server, { host, port });
  const addr = server.address();
  return { port: typeof addr === "object" && addr ? addr.port : port, close: () => close(server) };
}
