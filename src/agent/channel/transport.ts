// The agent's WebSocket to the control plane (the transport): WSS, TLS 1.3, mTLS with the current
// client certificate, the server verified against the installed trust bundle. Carries hello/status/ack
// up and hands rotate/trust-bundle/evict to the command handler (commands.ts). Reconnects with
// full-jitter backoff on the injected clock (never a stampede), and again after the client
// certificate rotates so the server sees the new one.
import { randomUUID } from "node:crypto";
import type { TLSSocket } from "node:tls";
import WebSocket from "ws";
import { CHANNEL_PATH, CHANNEL_VERSION, CLOSE_EVICTED, CLOSE_POLICY_VIOLATION, closeReason, parseFrame, ServerMessage } from "../../protocol/channel.js";
import type { Logger } from "../../platform/log.js";
import type { CertKind } from "../../pki/csr.js";
import { peerChain } from "../../platform/peer-chain.js";
import { controlPlaneIdentityCheck } from "../../platform/https-client.js";
import { backoffDelay } from "../../platform/backoff.js";
import { toClock, type Clock, type ClockLike, type Timer } from "../../platform/clock.js";
import type { Identity } from "../identity.js";
import type { NodeStore } from "../node-store.js";
import type { Renewer } from "../renewer.js";
import { AGENT_VERSION } from "../../version.js";
import { processCryptoSummary, processTlsOptions } from "../../crypto/process.js";
import { ChannelCommands } from "./commands.js";

export interface ChannelOptions {
  heartbeatMs: number;
  reconnectInitialMs: number;
  reconnectMaxMs: number;
}

export interface ChannelDeps {
  store: NodeStore;
  logger: Logger;
  clock: ClockLike;
  random: () => number;
  /** Where to connect on the `attempt`-th consecutive try (a list of replicas: each try the next). */
  serverUrl: (attempt?: number) => Promise<string | undefined>;
  renewer: Renewer;
  identity: () => Promise<Identity>;
  options: ChannelOptions;
  onEvicted?: (reason: string) => void;
  onConnected?: () => void;
}

export { CHANNEL_PATH };

export class Channel {
  private ws: WebSocket | undefined;
  private stopped = true;
  private attempts = 0;
  private retry: Timer | undefined;
  private heartbeat: Timer | undefined;
  private readonly clock: Clock;
  private readonly commands: ChannelCommands;
  private alive = true;
  /** A command is being handled: reconnects wait until its ack is sent. */
  private busy = 0;
  private reconnectAfterCommand = false;
  connectedAt: Date | undefined;

  constructor(private readonly d: ChannelDeps) {
    this.clock = toClock(d.clock);
    this.commands = new ChannelCommands({ store: d.store, logger: d.logger, clock: this.clock, renewer: d.renewer });
  }

  get connected(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    void this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.retry?.cancel();
    this.heartbeat?.cancel();
    const ws = this.ws;
    this.ws = undefined;
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((resolve) => {
        ws.once("close", () => resolve());
        ws.close(1001, "agent stopping");
        this.clock.setTimeout(() => (ws.terminate(), resolve()), 2000, { unref: true });
      });
    }
  }

  /** Called after certificates were installed by any path (schedule, command, `nodecert renew`). */
  afterInstall(kinds: CertKind[]): void {
    if (kinds.includes("client")) {
      if (this.busy) this.reconnectAfterCommand = true;
      else this.reconnect("client certificate rotated");
    } else {
      void this.sendStatus();
    }
  }

  /** Drops the connection and dials again at once (with the files as they are now). */
  reconnect(reason: string): void {
    if (this.stopped) return;
    this.d.logger.info("reconnecting the channel", { reason });
    const ws = this.ws;
    this.ws = undefined;
    this.heartbeat?.cancel();
    this.retry?.cancel();
    if (ws) {
      ws.removeAllListeners("close");
      ws.on("close", () => undefined);
      closeQuietly(ws, 1000, reason);
    }
    this.attempts = 0;
    void this.connect();
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    this.retry?.cancel();
    const delay = backoffDelay(this.attempts++, { baseMs: this.d.options.reconnectInitialMs, capMs: this.d.options.reconnectMaxMs, random: this.d.random });
    this.d.logger.debug("channel reconnect scheduled", { inMs: delay, attempt: this.attempts });
    this.retry = this.clock.setTimeout(() => void this.connect(), delay, { unref: true });
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const log = this.d.logger;
    let url: string | undefined;
    let ca: string, pem: string | undefined;
    try {
      url = await this.d.serverUrl(this.attempts);
      ca = (await this.d.store.readTrustBundle()) ?? "";
      pem = await this.d.store.readCurrentPem("client");
    } catch (e) {
      log.debug("channel not connecting yet", { reason: (e as Error).message });
      return this.scheduleReconnect();
    }
    if (!url || !pem || !ca) return this.scheduleReconnect();
    // stop() or reconnect() may have run while the files were read.
    if (this.stopped || this.ws) return;
    const wsUrl = new URL(CHANNEL_PATH, url.replace(/^http/, "ws")).toString();
    // The server must prove the control-plane identity, not merely a certificate from the cluster
    // CA (which every node has): checked in the handshake, before any message flows.
    const ws = new WebSocket(wsUrl, {
      ca,
      cert: pem,
      key: pem,
      minVersion: "TLSv1.3",
      maxVersion: "TLSv1.3",
      ...processTlsOptions(),
      // ws hands its options to tls.connect; its type for this option is out of date.
      ...({ checkServerIdentity: controlPlaneIdentityCheck } as object),
      perMessageDeflate: false,
      maxPayload: 1024 * 1024,
      handshakeTimeout: 15_000,
    });
    this.ws = ws;
    let refused = false;
    ws.on("unexpected-response", (req, res) => {
      refused = true;
      let body = "";
      res.on("data", (c: Buffer) => (body += c));
      res.on("end", () => {
        let reason = body;
        let rule: string | undefined;
        try {
          ({ reason, rule } = JSON.parse(body) as { reason: string; rule?: string });
        } catch {
          /* keep raw */
        }
        log.error("the control plane refused the channel", { status: res.statusCode, rule, reason });
        if (rule === "evicted") void this.evicted(reason);
        else if (this.ws === ws) this.scheduleReconnect();
      });
      req.destroy();
    });
    ws.on("open", () => {
      this.attempts = 0;
      this.alive = true;
      this.connectedAt = this.clock();
      log.info("channel connected", { url: wsUrl });
      this.heartbeat?.cancel();
      this.heartbeat = this.clock.setInterval(() => {
        if (!this.alive) {
          log.warn("the control plane did not answer the heartbeat; reconnecting");
          ws.terminate();
          return;
        }
        this.alive = false;
        ws.ping();
      }, this.d.options.heartbeatMs, { unref: true });
      void this.sendHello(ws).then(() => this.d.onConnected?.());
    });
    ws.on("pong", () => (this.alive = true));
    ws.on("ping", () => (this.alive = true));
    ws.on("message", (data: Buffer, isBinary: boolean) => void this.onMessage(ws, data, isBinary));
    ws.on("error", (e) => {
      if (!refused) log.warn("channel error", { error: e.message });
    });
    ws.on("close", (code, reason) => {
      this.heartbeat?.cancel();
      if (this.ws !== ws) return;
      this.ws = undefined;
      if (code === CLOSE_EVICTED) return void this.evicted(reason.toString() || "evicted by the control plane");
      if (!refused) {
        log.info("channel closed", { code, reason: reason.toString() });
        this.scheduleReconnect();
      }
    });
  }

  private send(ws: WebSocket | undefined, msg: Record<string, unknown>): void {
    if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ v: CHANNEL_VERSION, id: randomUUID(), ...msg }));
  }

  private async sendHello(ws: WebSocket): Promise<void> {
    const identity = await this.d.identity();
    const crypto = identity.facts.crypto ?? processCryptoSummary();
    this.send(ws, { type: "hello", nodeName: identity.nodeName, agentVersion: AGENT_VERSION, certificates: await this.commands.certificates(), crypto, addresses: identity.facts.addresses, trustBundleSha256: await this.commands.trustSha() });
  }

  async sendStatus(): Promise<void> {
    this.send(this.ws, { type: "status", certificates: await this.commands.certificates(), trustBundleSha256: await this.commands.trustSha() });
  }

  private async onMessage(ws: WebSocket, data: Buffer, isBinary: boolean): Promise<void> {
    // Frames still arriving after we started closing (or replaced this socket) are not acted on.
    if (ws.readyState !== WebSocket.OPEN || this.ws !== ws) return;
    const parsed = isBinary ? ({ ok: false, reason: "binary frame" } as const) : parseFrame(ServerMessage, data);
    if (!parsed.ok) {
      this.d.logger.warn("closing channel: the control plane sent an invalid message", { reason: parsed.reason });
      closeQuietly(ws, CLOSE_POLICY_VIOLATION, parsed.reason);
      return;
    }
    this.busy++;
    try {
      await this.commands.handle(parsed.message, {
        send: (msg) => this.send(ws, msg),
        sendStatus: () => this.sendStatus(),
        peerChain: () => {
          const socket = (ws as unknown as { _socket?: TLSSocket })._socket;
          return socket ? peerChain(socket) : undefined;
        },
        evicted: (reason) => this.evicted(reason),
      });
    } finally {
      this.busy--;
      if (!this.busy && this.reconnectAfterCommand) {
        this.reconnectAfterCommand = false;
        this.reconnect("client certificate rotated");
      }
    }
  }

  /** The first eviction handled (the evict message, then its close frame): later ones wait for it. */
  private evicting?: Promise<void>;

  private evicted(reason: string): Promise<void> {
    // Both would read the state before either wrote it, and the close frame's generic reason
    // could overwrite the operator's (seen under load).
    return (this.evicting ??= this.recordEviction(reason));
  }

  private async recordEviction(reason: string): Promise<void> {
    if (this.stopped) return;
    this.d.logger.error("this node was evicted by the control plane; it will not renew or reconnect", { reason });
    await this.d.store.markEvicted(this.clock(), reason).catch((e: Error) => this.d.logger.error("cannot record the eviction in the agent state; it holds until this agent stops", { error: e.message }));
    await this.stop();
    this.d.onEvicted?.(reason);
  }
}

/** Closes with a reason cut to the protocol's 123 bytes; a socket that cannot close politely is dropped. */
function closeQuietly(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code, closeReason(reason));
  } catch {
    ws.terminate();
  }
}
