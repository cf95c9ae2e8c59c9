// The agent's WebSocket to the control plane: WSS, TLS 1.3, mTLS with the current client
// certificate, the server verified against the installed trust bundle. Carries hello/status/ack
// up and rotate/trust-bundle/evict down. Reconnects with full-jitter backoff (never a stampede),
// and again after the client certificate rotates so the server sees the new one.
import { promises as fs } from "node:fs";
import { createHash, randomUUID, X509Certificate } from "node:crypto";
import type { TLSSocket } from "node:tls";
import WebSocket from "ws";
import { CHANNEL_VERSION, CLOSE_EVICTED, CLOSE_POLICY_VIOLATION, closeReason, parseFrame, ServerMessage, type CertificateReport } from "../protocol/channel.js";
import type { Logger } from "../platform/log.js";
import type { CertKind } from "../pki/csr.js";
import { certificateInfo } from "../pki/certificate-info.js";
import { splitCertificates } from "../pki/pem.js";
import { chainProblems } from "../pki/verify.js";
import { peerChain } from "../platform/peer-chain.js";
import { controlPlaneIdentityCheck } from "../platform/https-client.js";
import { backoffDelay } from "../platform/backoff.js";
import type { Identity } from "./identity.js";
import { installTrustBundle, readCurrent } from "./install.js";
import type { NodeLayout } from "./layout.js";
import type { Renewer } from "./renewer.js";
import { readState, writeState } from "./state.js";
import { AGENT_VERSION } from "../version.js";
import { processCryptoSummary, processTlsOptions } from "../crypto/process.js";

export interface ChannelOptions {
  heartbeatMs: number;
  reconnectInitialMs: number;
  reconnectMaxMs: number;
}

export interface ChannelDeps {
  layout: NodeLayout;
  logger: Logger;
  clock: () => Date;
  random: () => number;
  /** Where to connect on the `attempt`-th consecutive try (a list of replicas: each try the next). */
  serverUrl: (attempt?: number) => Promise<string | undefined>;
  renewer: Renewer;
  identity: () => Promise<Identity>;
  options: ChannelOptions;
  onEvicted?: (reason: string) => void;
  onConnected?: () => void;
}

export const CHANNEL_PATH = "/v1/agents/ws";

export class Channel {
  private ws: WebSocket | undefined;
  private stopped = true;
  private attempts = 0;
  private retry: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private alive = true;
  /** A command is being handled: reconnects wait until its ack is sent. */
  private busy = 0;
  private reconnectAfterCommand = false;
  connectedAt: Date | undefined;

  constructor(private readonly d: ChannelDeps) {}

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
    clearTimeout(this.retry);
    clearInterval(this.heartbeat);
    const ws = this.ws;
    this.ws = undefined;
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((resolve) => {
        ws.once("close", () => resolve());
        ws.close(1001, "agent stopping");
        setTimeout(() => (ws.terminate(), resolve()), 2000).unref();
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
    clearInterval(this.heartbeat);
    clearTimeout(this.retry);
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
    clearTimeout(this.retry);
    const delay = backoffDelay(this.attempts++, { baseMs: this.d.options.reconnectInitialMs, capMs: this.d.options.reconnectMaxMs, random: this.d.random });
    this.d.logger.debug("channel reconnect scheduled", { inMs: delay, attempt: this.attempts });
    this.retry = setTimeout(() => void this.connect(), delay);
    this.retry.unref?.();
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const log = this.d.logger;
    let url: string | undefined;
    let ca: string, pem: string | undefined;
    try {
      url = await this.d.serverUrl(this.attempts);
      ca = await fs.readFile(this.d.layout.caFile, "utf8");
      pem = await readCurrent(this.d.layout, "client");
    } catch (e) {
      log.debug("channel not connecting yet", { reason: (e as Error).message });
      return this.scheduleReconnect();
    }
    if (!url || !pem) return this.scheduleReconnect();
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
      this.connectedAt = this.d.clock();
      log.info("channel connected", { url: wsUrl });
      clearInterval(this.heartbeat);
      this.heartbeat = setInterval(() => {
        if (!this.alive) {
          log.warn("the control plane did not answer the heartbeat; reconnecting");
          ws.terminate();
          return;
        }
        this.alive = false;
        ws.ping();
      }, this.d.options.heartbeatMs);
      this.heartbeat.unref?.();
      void this.sendHello(ws).then(() => this.d.onConnected?.());
    });
    ws.on("pong", () => (this.alive = true));
    ws.on("ping", () => (this.alive = true));
    ws.on("message", (data: Buffer, isBinary: boolean) => void this.onMessage(ws, data, isBinary));
    ws.on("error", (e) => {
      if (!refused) log.warn("channel error", { error: e.message });
    });
    ws.on("close", (code, reason) => {
      clearInterval(this.heartbeat);
      if (this.ws !== ws) return;
      this.ws = undefined;
      if (code === CLOSE_EVICTED) return void this.evicted(reason.toString() || "evicted by the control plane");
      if (!refused) {
        log.info("channel closed", { code, reason: reason.toString() });
        this.scheduleReconnect();
      }
    });
  }

  private async certificates(): Promise<CertificateReport[]> {
    const out: CertificateReport[] = [];
    for (const kind of ["client", "serving"] as const) {
      const pem = await readCurrent(this.d.layout, kind).catch(() => undefined);
      if (!pem) continue;
      const i = certificateInfo(splitCertificates(pem)[0]);
      out.push({ kind, serial: i.serial, notAfter: i.notAfter.toISOString(), keyAlgorithm: i.keyAlgorithm ?? i.keyDescription, issuer: i.issuer });
    }
    return out;
  }

  private async trustSha(): Promise<string | undefined> {
    const ca = await fs.readFile(this.d.layout.caFile, "utf8").catch(() => undefined);
    return ca === undefined ? undefined : createHash("sha256").update(ca).digest("hex");
  }

  private send(ws: WebSocket | undefined, msg: Record<string, unknown>): void {
    if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ v: CHANNEL_VERSION, id: randomUUID(), ...msg }));
  }

  private async sendHello(ws: WebSocket): Promise<void> {
    const identity = await this.d.identity();
    const crypto = identity.facts.crypto ?? processCryptoSummary();
    this.send(ws, { type: "hello", nodeName: identity.nodeName, agentVersion: AGENT_VERSION, certificates: await this.certificates(), crypto, addresses: identity.facts.addresses, trustBundleSha256: await this.trustSha() });
  }

  async sendStatus(): Promise<void> {
    this.send(this.ws, { type: "status", certificates: await this.certificates(), trustBundleSha256: await this.trustSha() });
  }

  private async onMessage(ws: WebSocket, data: Buffer, isBinary: boolean): Promise<void> {
    const log = this.d.logger;
    // Frames still arriving after we started closing (or replaced this socket) are not acted on.
    if (ws.readyState !== WebSocket.OPEN || this.ws !== ws) return;
    const parsed = isBinary ? ({ ok: false, reason: "binary frame" } as const) : parseFrame(ServerMessage, data);
    if (!parsed.ok) {
      log.warn("closing channel: the control plane sent an invalid message", { reason: parsed.reason });
      closeQuietly(ws, CLOSE_POLICY_VIOLATION, parsed.reason);
      return;
    }
    const msg = parsed.message;
    this.busy++;
    try {
      if (msg.type === "rotate") {
        log.info("rotation pushed by the control plane", { which: msg.which, reason: msg.reason, keyAlgorithm: msg.keyAlgorithm });
        if (msg.keyAlgorithm) await this.d.renewer.setKeyAlgorithm(msg.keyAlgorithm);
        const out = await this.d.renewer.renew(msg.which, { force: true });
        const serials: Record<string, string> = {};
        for (const r of out.renewed) serials[r.kind] = r.serial;
        this.send(ws, { type: "ack", commandId: msg.id, result: out.error ? "error" : "ok", serials, error: out.error?.slice(0, 2000) });
        await this.sendStatus();
      } else if (msg.type === "trust-bundle") {
        const problem = await this.checkBundle(ws, msg.bundle, msg.vouchers ?? []);
        if (problem) {
          log.error("refusing a pushed trust bundle", { reason: problem });
          this.send(ws, { type: "ack", commandId: msg.id, result: "error", error: problem });
        } else {
          await installTrustBundle(this.d.layout, msg.bundle);
          log.info("installed a pushed trust bundle", { certificates: splitCertificates(msg.bundle).length });
          this.send(ws, { type: "ack", commandId: msg.id, result: "ok" });
          await this.sendStatus();
        }
      } else if (msg.type === "evict") {
        await this.evicted(msg.reason);
      }
    } catch (e) {
      log.error("handling a control-plane command failed", { type: msg.type, error: (e as Error).message });
      if (msg.type !== "evict") this.send(ws, { type: "ack", commandId: msg.id, result: "error", error: (e as Error).message.slice(0, 2000) });
    } finally {
      this.busy--;
      if (!this.busy && this.reconnectAfterCommand) {
        this.reconnectAfterCommand = false;
        this.reconnect("client certificate rotated");
      }
    }
  }

  /**
   * A pushed bundle must hold CA certificates and still verify the control plane we talk to, and
   * it may add a CA only with a voucher: a cross-certificate with exactly that CA's subject and
   * key, signed by a CA this node trusts already. Dropping CAs needs no voucher.
   */
  private async checkBundle(ws: WebSocket, bundle: string, vouchers: string[]): Promise<string | undefined> {
    const certs = splitCertificates(bundle);
    if (!certs.length) return "the bundle holds no certificate";
    for (const c of certs) {
      if (!certificateInfo(c).isCA) return `"${certificateInfo(c).subject}" in the bundle is not a CA certificate`;
    }
    const now = this.d.clock();
    const trusted = splitCertificates(await fs.readFile(this.d.layout.caFile, "utf8").catch(() => "")).map((p) => new X509Certificate(p));
    const vouched = vouchers.flatMap(splitCertificates).map((p) => new X509Certificate(p));
    for (const pem of certs) {
      const ca = new X509Certificate(pem);
      if (trusted.some((t) => sameCa(t, ca))) continue;
      const voucher = vouched.find((v) => sameCa(v, ca) && v.ca && validAt(v, now) && trusted.some((t) => validAt(t, now) && v.checkIssued(t) && v.verify(t.publicKey)));
      if (!voucher) {
        return (
          `the bundle adds CA "${ca.subject.replace(/\n/g, ", ")}" (${certificateInfo(pem).spkiPin}), and no voucher from a CA this node trusts vouches for it; refusing it. ` +
          `A CA rotation's new CA comes with a cross-certificate from the current CA; anything else is not the control plane's to add`
        );
      }
    }
    const socket = (ws as unknown as { _socket?: TLSSocket })._socket;
    const chain = socket ? peerChain(socket) : undefined;
    if (!chain) return "cannot read the control plane's certificate to check the bundle against";
    const problems = chainProblems(chain, bundle, now);
    if (problems.length) return `the bundle would not trust the control plane's own certificate (${problems.join("; ")}); refusing it`;
    return undefined;
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
    const s = await readState(this.d.layout).catch(() => undefined);
    if (s && !s.evicted) await writeState(this.d.layout, { ...s, evicted: { at: this.d.clock().toISOString(), reason } }).catch(() => undefined);
    await this.stop();
    this.d.onEvicted?.(reason);
  }
}

/** The same CA: subject and public key (a cross-certificate or a re-issue of it counts). */
function sameCa(a: X509Certificate, b: X509Certificate): boolean {
  return a.subject === b.subject && a.publicKey.export({ format: "der", type: "spki" }).equals(b.publicKey.export({ format: "der", type: "spki" }));
}

function validAt(c: X509Certificate, now: Date): boolean {
  return new Date(c.validFrom) <= now && now < new Date(c.validTo);
}

/** Closes with a reason cut to the protocol's 123 bytes; a socket that cannot close politely is dropped. */
function closeQuietly(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code, closeReason(reason));
  } catch {
    ws.terminate();
  }
}
