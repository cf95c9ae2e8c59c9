// Localhost HTTP endpoints for the agent (fastify): /healthz now; /readyz and /metrics come with renewal.
import Fastify, { type FastifyInstance } from "fastify";
import { parseListen } from "../config/server.js";

export interface HealthSource {
  joined(): boolean;
}

export async function startHealthServer(listen: string, src: HealthSource): Promise<{ app: FastifyInstance; port: number }> {
  const app = Fastify({ logger: false, bodyLimit: 1024 });
  app.get("/healthz", async () => ({ ok: true, joined: src.joined() }));
  const { host, port } = parseListen(listen);
  await app.listen({ host, port });
  const addr = app.server.address();
  return { app, port: typeof addr === "object" && addr ? addr.port : port };
}
