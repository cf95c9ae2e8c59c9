// Localhost HTTP (node:http): /healthz (alive), /readyz (certificates usable), /metrics (Prometheus).
import type http from "node:http";
import { parseListen } from "../../config/listen.js";
import type { AgentMetrics } from "../metrics.js";
import { close, createLocalServer, listen } from "../../platform/local-http.js";

export interface Readiness {
  ready: boolean;
  reason: string;
}

export interface HealthSource {
  joined(): boolean;
  readiness(): Promise<Readiness>;
  metrics: AgentMetrics;
}

export interface HealthServer {
  server: http.Server;
  port: number;
  close(): Promise<void>;
}

export async function startHealthServer(listenOn: string, src: HealthSource): Promise<HealthServer> {
  const readiness = async () => {
    const r = await src.readiness();
    src.metrics.setReady(r.ready);
    return r;
  };
  const server = createLocalServer(
    {
      "GET /healthz": async () => ({ body: { ok: true, joined: src.joined() } }),
      "GET /readyz": async () => {
        const r = await readiness();
        return { status: r.ready ? 200 : 503, body: r };
      },
      "GET /metrics": async () => {
        await readiness();
        const m = await src.metrics.render();
        return { body: m.body, contentType: m.contentType };
      },
    },
    { bodyLimit: 1024 },
  );
  const { host, port } = parseListen(listenOn);
  await listen(server, { host, port });
  const addr = server.address();
  return { server, port: typeof addr === "object" && addr ? addr.port : port, close: () => close(server) };
}
