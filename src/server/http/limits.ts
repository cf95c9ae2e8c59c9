// What one peer may cost the HTTPS listener: time limits on the TLS handshake, the request
// headers, the whole request and idle keep-alive connections, and a cap on the connections one
// source holds open. Without them a few hundred stalled request bodies from one address took
// every file descriptor and /healthz failed for everyone else.
import type { Server } from "node:http";
import type { Socket } from "node:net";
import type { Logger } from "../../platform/log.js";
import { sourceKey } from "../source-key.js";

// The limits' shape and defaults are configuration (server.yaml `limits`): defined in config/.
import type { HttpLimits } from "../../config/server-defaults.js";
export { DEFAULT_HTTP_LIMITS, type HttpLimits } from "../../config/server-defaults.js";

/** Options for Fastify's constructor and its https server. */
export function fastifyTimeoutOptions(l: HttpLimits) {
  return { connectionTimeout: l.requestTimeout, keepAliveTimeout: l.idleTimeout, requestTimeout: l.requestTimeout };
}

/** Node checks header and request deadlines on an interval (30 s by default): check often enough. */
export function applyServerTimeouts(server: Server, l: HttpLimits): void {
  server.headersTimeout = l.headersTimeout;
  server.requestTimeout = l.requestTimeout;
  server.keepAliveTimeout = l.idleTimeout;
  (server as Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval = Math.max(100, Math.min(1000, Math.floor(Math.min(l.headersTimeout, l.requestTimeout) / 4)));
}

const COUNTED = Symbol("nodecert.connectionSource");

type Counted = Socket & { [COUNTED]?: string };

/**
 * Counts raw TCP connections per source and drops those over the cap at once (before TLS).
 * A connection that became an authenticated fleet channel is released from the count: there is
 * one per node, and a node's new channel replaces its old one.
 */
export class ConnectionCap {
  private readonly open = new Map<string, number>();
  private readonly lastWarned = new Map<string, number>();

  constructor(
    private readonly limits: Pick<HttpLimits, "maxConnectionsPerSource" | "ipv6SourcePrefix">,
    private readonly logger: Logger,
    private readonly now: () => number,
  ) {}

  attach(server: Server): void {
    server.on("connection", (socket: Counted) => {
      const key = sourceKey(socket.remoteAddress, this.limits.ipv6SourcePrefix);
      const n = this.open.get(key) ?? 0;
      if (n >= this.limits.maxConnectionsPerSource) {
        this.warn(key);
        socket.destroy();
        return;
      }
      this.open.set(key, n + 1);
      socket[COUNTED] = key;
      socket.once("close", () => this.release(socket));
    });
  }

  /** Stops counting a connection (the raw socket, or the TLS socket wrapping it). */
  release(socket: unknown): void {
    const raw = ((socket as { _parent?: Counted })._parent ?? socket) as Counted;
    const key = raw[COUNTED];
    if (key === undefined) return;
    raw[COUNTED] = undefined;
    const n = (this.open.get(key) ?? 1) - 1;
    if (n > 0) this.open.set(key, n);
    else this.open.delete(key);
  }

  /** Connections counted for a source key now (tests, metrics). */
  count(key: string): number {
    return this.open.get(key) ?? 0;
  }

  private warn(key: string): void {
    // One line per source per minute: a flood must not turn into a log flood.
    const t = this.now();
    if (t - (this.lastWarned.get(key) ?? -Infinity) < 60_000) return;
    this.lastWarned.set(key, t);
    if (this.lastWarned.size > 10_000) this.lastWarned.clear();
    this.logger.warn("refusing connections over the per-source cap", { source: key, max: this.limits.maxConnectionsPerSource });
  }
}
