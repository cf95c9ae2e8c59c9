// Localhost HTTP (fastify): /healthz (alive), /readyz (certificates usable), /metrics (Prometheus).
import Fastify, { type FastifyInstance } from "fastify";
import { parseListen } from "../config/listen.js";
import type { AgentMetrics } from "./metrics.js";

export interface Readiness {
  ready: boolean;
  reason: string;
}

export interface HealthSource {
  joined(): boolean;
  readiness(): Promise<Readiness>;
  metrics: AgentMetrics;
}

export async function startHealthServer(listen: string, src: HealthSource): Promise<{ app: FastifyInstance; port: number }> {
  const app = Fastify({ logger: false, bodyLimit: 1024 });
  app.get("/healthz", async () => ({ ok: true, joined: src.joined() }));
  app.get("/readyz", async (_req, reply) => {
    const r = await src.readiness();
    src.metrics.ready.set(r.ready ? 1 : 0);
    return reply.status(r.ready ? 200 : 503).send(r);
  });
  app.get("/metrics", async (_req, reply) => {
    await src.readiness().then((r) => src.metrics.ready.set(r.ready ? 1 : 0));
    return reply.header("content-type", src.metrics.registry.contentType).send(await src.metrics.registry.metrics());
  });
  const { host, port } = parseListen(listen);
  await app.listen({ host, port });
  const addr = app.server.address();
  return { app, port: typeof addr === "object" && addr ? addr.port : port };
}
