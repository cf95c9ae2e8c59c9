// The fleet channel: one WSS connection per agent at /v1/agents/ws (TLS 1.3, mTLS). Identity
// comes only from the client certificate. Heartbeats terminate dead peers; bad frames close the
// connection with a policy violation and a log line; nothing here can crash the process.
import { EventEmitter } from "node:events";
import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import { createHash, randomUUID } from "node:crypto";
import { WebSocketServer, type WebSocket } from "ws";
import { AgentMessage, CHANNEL_VERSION, CLOSE_EVICTED, CLOSE_POLICY_VIOLATION, closeReason, MAX_FRAME_BYTES, parseFrame, type Ack, type Hello, type ServerMessage } from "../../protocol/channel.js";
import type { Logger } from "../../platform/log.js";
import type { Store, NodeReport } from "../store/store.js";
import type { Authority } from "../ca/authority.js";
import { authenticateNode, nodeStanding } from "../node-auth.js";
import { DEFAULT_CHANNEL_LIMITS, TokenBucket, type ChannelLimits } from "./channel-limits.js";
import { toClock, type Clock, type ClockLike, type Timer } from "../../platform/clock.js";

import { CHANNEL_PATH } from "../../protocol/channel.js";
export { CHANNEL_PATH };

/** Frames a peer may still send after we closed its channel before it is dropped. */
const MAX_FRAMES_AFTER_CLOSE = 64;

interface Conn {
  node: string;
  ws: WebSocket;
  alive: boolean;
  serial: string;
  /** Ids of commands sent on this connection and not acknowledged yet. */
  unacked: Set<string>;
  /** Messages the peer may still send (the rate limit). */
  bucket: TokenBucket;
  /** The trust-bundle push awaiting an ack on this connection: bundle hash → command id. */
  bundlePush?: { sha: string; id: string };
  /** Closed (or closing) by us: nothing more is sent or handled. */
  closing: boolean;
  /** Frames that arrived after we closed; a peer that keeps sending is dropped. */
  afterClose: number;
}

type Outbound = ServerMessage extends infer M ? (M extends { v: number; id: string } ? Omit<M, "v" | "id"> : never) : never;

export interface HubDeps {
  store: Store;
  authority: Authority;
  logger: Logger;
  clock: ClockLike;
  heartbeatMs: number;
  /** Rate limit and back-pressure bound per connection (default DEFAULT_CHANNEL_LIMITS). */
  limits?: ChannelLimits;
  /** A connection became an authenticated channel (the per-source connection cap releases it). */
  onChannelOpen?: (socket: Duplex) => void;
}

export interface HubEvents {
  connect: [node: string];
  disconnect: [node: string];
  hello: [node: string, hello: Hello];
  status: [node: string];
  ack: [node: string, ack: Ack];
}

export class Hub extends EventEmitter<HubEvents> {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024, perMessageDeflate: false });
  private readonly conns = new Map<string, Conn>();
  /** Commands sent and not yet acknowledged: id → the connection it went out on. An ack comes back
   * on that connection or never, so a closed connection takes its entries with it. */
  private readonly sent = new Map<string, Conn>();
  private heartbeat: Timer | undefined;
  private readonly clock: Clock;
  private readonly limits: ChannelLimits;
  /** Policy violations closed, by a short code (tests, metrics). */
  readonly violations = new Map<string, number>();

  constructor(private readonly d: HubDeps) {
    super();
    this.limits = d.limits ?? DEFAULT_CHANNEL_LIMITS;
    this.clock = toClock(d.clock);
  }

  attach(server: Server): void {
    server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.upgrade(req, socket, head).catch((e) => {
        this.d.logger.error("WebSocket upgrade failed", { error: (e as Error).message });
        socket.destroy();
      });
    });
    this.heartbeat = this.clock.setInterval(() => this.beat(), this.d.heartbeatMs, { unref: true });
  }

  connected(node: string): boolean {
    return this.conns.has(node);
  }

  /** Commands awaiting an ack (bounded by what live connections have outstanding). */
  get unackedCount(): number {
    return this.sent.size;
  }

  connectedNodes(): string[] {
    return [...this.conns.keys()];
  }

  /** Sends a message to a connected node; returns its id, or undefined when the node is offline. */
  send(node: string, msg: Outbound): string | undefined {
    const c = this.conns.get(node);
    if (!c || c.closing) return undefined;
    const id = randomUUID();
    this.sent.set(id, c);
    c.unacked.add(id);
    c.ws.send(JSON.stringify({ v: CHANNEL_VERSION, id, ...msg }));
    // Back-pressure: a peer that does not read would make us buffer without bound.
    if (c.ws.bufferedAmount > this.limits.maxBufferedBytes) {
      this.count("send-buffer");
      this.d.logger.warn("disconnecting an agent that does not read: its send buffer exceeds the bound", { node, bufferedBytes: c.ws.bufferedAmount, maxBufferedBytes: this.limits.maxBufferedBytes });
      c.closing = true;
      // A close frame would queue behind what it does not read: drop the connection.
      c.ws.terminate();
    }
    return id;
  }

  /**
   * Sends the trust bundle unless this connection already has the same bundle outstanding (not
   * acked yet): a node repeating its hello gets one push, not one per hello.
   */
  pushTrustBundle(node: string, msg: { type: "trust-bundle"; bundle: string; vouchers?: string[] }): string | undefined {
    const c = this.conns.get(node);
    if (!c) return undefined;
    const sha = createHash("sha256").update(msg.bundle).digest("hex");
    if (c.bundlePush?.sha === sha && c.unacked.has(c.bundlePush.id)) return c.bundlePush.id;
    const id = this.send(node, msg);
    if (id) c.bundlePush = { sha, id };
    return id;
  }

  disconnect(node: string, code: number, reason: string): void {
    const c = this.conns.get(node);
    if (c) this.closeConn(c, code, reason);
  }

  /** Closes with a reason that fits the protocol's 123 bytes; never throws. */
  private closeConn(c: Conn, code: number, reason: string): void {
    c.closing = true;
    try {
      c.ws.close(code, closeReason(reason));
    } catch (e) {
      this.d.logger.warn("could not close a channel politely; dropping it", { node: c.node, error: (e as Error).message });
      c.ws.terminate();
    }
  }

  private count(what: string): void {
    this.violations.set(what, (this.violations.get(what) ?? 0) + 1);
  }

  async close(): Promise<void> {
    this.heartbeat?.cancel();
    for (const c of this.conns.values()) c.ws.terminate();
    this.conns.clear();
    await new Promise<void>((r) => this.wss.close(() => r()));
  }

  private refuse(socket: Duplex, status: number, reason: string, rule?: string): void {
    const body = JSON.stringify({ error: status === 401 ? "unauthenticated" : "denied", rule, reason });
    socket.write(`HTTP/1.1 ${status} ${status === 401 ? "Unauthorized" : status === 404 ? "Not Found" : "Forbidden"}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    socket.destroy();
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const source = req.socket.remoteAddress;
    if (new URL(req.url ?? "/", "https://x").pathname !== CHANNEL_PATH) return this.refuse(socket, 404, `no WebSocket endpoint at ${req.url}`);
    const now = this.d.clock();
    // The same node authentication as POST /v1/renew (node-auth), without any grace for an expired certificate.
    const auth = authenticateNode(req.socket, this.d.authority, now, { expiredGraceMs: 0 });
    if (!auth.ok) {
      if (auth.code === "not-a-node") {
        this.d.logger.warn("channel upgrade refused", { source, reason: `not a node certificate: ${auth.cn}` });
        return this.refuse(socket, 403, auth.reason, "not-a-node");
      }
      this.d.logger.warn("channel upgrade refused", { source, reason: auth.reason });
      return this.refuse(socket, 401, `the fleet channel needs the node's current client certificate (mTLS): ${auth.reason}`);
    }
    const node = auth.node;
    const info = auth.info;
    const standing = await nodeStanding(this.d.store, node, info.serial);
    if (!standing.ok) {
      if (standing.code === "known-node") return this.refuse(socket, 403, `node "${node}" is not known to this server`, "known-node");
      if (standing.code === "evicted") {
        this.d.logger.warn("channel upgrade refused: node evicted", { node, source });
        return this.refuse(socket, 403, `node "${node}" was evicted at ${standing.at.toISOString()}`, "evicted");
      }
      this.d.logger.warn("channel upgrade refused: superseded certificate", { node, source, serial: info.serial });
      return this.refuse(socket, 403, `client certificate ${info.serial} has been superseded for node "${node}"`, "lineage");
    }
    const rec = standing.record;
    // Connecting with its newest certificate proves the node holds it: from now on nothing older
    // may renew or connect for it.
    if (info.serial !== rec.confirmedSerial && !(await this.d.store.confirmClientSerial(node, info.serial))) {
      this.d.logger.warn("channel upgrade refused: superseded certificate", { node, source, serial: info.serial });
      return this.refuse(socket, 403, `client certificate ${info.serial} has been superseded for node "${node}"`, "lineage");
    }
    this.d.onChannelOpen?.(socket);
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, node, info.serial, source));
  }

  private onConnection(ws: WebSocket, node: string, serial: string, source: string | undefined): void {
    const log = this.d.logger;
    const previous = this.conns.get(node);
    if (previous) previous.ws.close(1000, "replaced by a newer connection");
    const conn: Conn = { node, ws, alive: true, serial, unacked: new Set(), bucket: new TokenBucket(this.limits.messageRate, this.limits.messageBurst, () => this.d.clock().getTime()), closing: false, afterClose: 0 };
    this.conns.set(node, conn);
    log.info("agent connected", { node, source, serial });
    this.emit("connect", node);
    ws.on("pong", () => (conn.alive = true));
    ws.on("error", (e: Error & { code?: string }) => {
      // ws closes these itself: 1009 for an oversized frame, 1002 for a protocol error.
      if (e.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH") {
        this.count("transport-limit");
        log.warn("closing channel: policy violation", { node, reason: `frame exceeds the 1 MiB transport limit (messages are limited to ${MAX_FRAME_BYTES} bytes)` });
      } else log.warn("channel error", { node, error: e.message });
    });
    ws.on("close", (code, reason) => {
      for (const id of conn.unacked) this.sent.delete(id);
      conn.unacked.clear();
      if (this.conns.get(node) === conn) {
        this.conns.delete(node);
        this.emit("disconnect", node);
      }
      log.info("agent disconnected", { node, code, reason: reason.toString() });
    });
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      try {
        this.onMessage(conn, data, isBinary);
      } catch (e) {
        log.error("channel message handling failed", { node, error: (e as Error).message });
        this.closeConn(conn, 1011, "internal error");
      }
    });
  }

  private violation(conn: Conn, code: string, reason: string): void {
    this.count(code);
    this.d.logger.warn("closing channel: policy violation", { node: conn.node, reason });
    this.closeConn(conn, CLOSE_POLICY_VIOLATION, reason);
  }

  private onMessage(conn: Conn, data: Buffer, isBinary: boolean): void {
    // Whatever arrives after we started closing is dropped unread. A polite peer answers our close
    // frame and stops; one that keeps sending (a flood) is cut off so we stop reading it at all.
    if (conn.closing) {
      if (++conn.afterClose > MAX_FRAMES_AFTER_CLOSE) conn.ws.terminate();
      return;
    }
    // Before any parsing: the rate limit bounds what a peer can make us do, store writes included.
    if (!conn.bucket.take()) return this.violation(conn, "rate", `more than ${this.limits.messageBurst} messages at once or ${this.limits.messageRate}/s sustained`);
    if (isBinary) return this.violation(conn, "binary", "binary frames are not part of the protocol");
    if (data.length > MAX_FRAME_BYTES) return this.violation(conn, "size", `frame of ${data.length} bytes exceeds ${MAX_FRAME_BYTES}`);
    const parsed = parseFrame(AgentMessage, data);
    if (!parsed.ok) return this.violation(conn, "invalid", parsed.reason);
    const msg = parsed.message;
    const now = this.d.clock();
    switch (msg.type) {
      case "hello": {
        if (msg.nodeName !== undefined && msg.nodeName !== conn.node) {
          return this.violation(conn, "identity", `hello claims node "${msg.nodeName}" but the client certificate is for "${conn.node}"`);
        }
        const report: NodeReport = {
          agentVersion: msg.agentVersion,
          fips: msg.crypto.fips,
          cryptoProvider: msg.crypto.provider,
          certificates: msg.certificates,
          addresses: msg.addresses,
          trustBundleSha256: msg.trustBundleSha256,
        };
        void this.d.store
          .recordReport(conn.node, report, now)
          .then(() => this.emit("hello", conn.node, msg))
          .catch((e: Error) => this.d.logger.error("could not record an agent's hello", { node: conn.node, error: e.message }));
        return;
      }
      case "status": {
        void this.d.store.getNode(conn.node).then(async (rec) => {
          const prev = rec?.reported;
          if (!prev) return;
          await this.d.store.recordReport(conn.node, { ...prev, certificates: msg.certificates, trustBundleSha256: msg.trustBundleSha256 ?? prev.trustBundleSha256 }, now);
          this.emit("status", conn.node);
        }).catch((e: Error) => this.d.logger.error("could not record an agent's status", { node: conn.node, error: e.message }));
        return;
      }
      case "ack": {
        const to = this.sent.get(msg.commandId);
        if (to !== conn) {
          this.d.logger.warn("ignoring an ack for a command this server never sent to the node", { node: conn.node, commandId: msg.commandId });
          return;
        }
        this.sent.delete(msg.commandId);
        conn.unacked.delete(msg.commandId);
        if (conn.bundlePush?.id === msg.commandId) conn.bundlePush = undefined;
        this.emit("ack", conn.node, msg);
        return;
      }
    }
  }

  private beat(): void {
    for (const c of this.conns.values()) {
      if (!c.alive) {
        this.d.logger.warn("agent did not answer the heartbeat; terminating the connection", { node: c.node });
        c.ws.terminate();
        continue;
      }
      c.alive = false;
      c.ws.ping();
    }
  }

  /** Tells a node it is evicted and closes its channel. */
  evict(node: string, reason: string): void {
    if (this.send(node, { type: "evict", reason })) this.clock.setTimeout(() => this.disconnect(node, CLOSE_EVICTED, "evicted"), 50, { unref: true });
  }
}
