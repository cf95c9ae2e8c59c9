// Keeps the node's certificates valid: evaluates each one, renews what is due over mTLS (or
// re-joins with a bootstrap token when the client certificate is gone), verifies, installs
// atomically, prunes, runs reload hooks, and backs off with full jitter while renewals fail.
import { promises as fs } from "node:fs";
import type { AgentConfig } from "../config/agent.js";
import type { Logger } from "../platform/log.js";
import type { CertKind } from "../pki/csr.js";
import { assertKeyAlgorithmAllowed } from "../crypto/process.js";
import type { KeyAlgorithm } from "../pki/keys.js";
import { privateKeyBlock } from "../pki/pem.js";
import { verifyNodeCertificate } from "../pki/verify.js";
import { PROTOCOL_VERSION, RenewResponse, type RenewRequest } from "../protocol/messages.js";
import { describeErrorBody, requestJson } from "../platform/https-client.js";
import { applyInstall } from "./apply.js";
import { backoffDelay } from "../platform/backoff.js";
import { CLIENT_UNUSABLE, decide, type Decision } from "./decision.js";
import { drawRenewAt, effectiveRenewAt, lifetimeTooShort, usableStart } from "./deadline.js";
import { scheduleGapMs } from "./schedule-gap.js";
import { runHooks, type Exec } from "./hooks.js";
import type { Identity } from "./identity.js";
import { readCurrent, readCurrentOutcome } from "./install.js";
import type { NodeLayout } from "./layout.js";
import type { AgentMetrics } from "./metrics.js";
import { pruneOld } from "./prune.js";
import { clearJoinError, readState, recordLastError, writeState, type AgentState } from "./state.js";

export const KINDS: CertKind[] = ["client", "serving"];

export interface RenewerDeps {
  config: AgentConfig;
  layout: NodeLayout;
  logger: Logger;
  clock: () => Date;
  /** Uniform in [0, 1): deadlines and jitter. */
  random: () => number;
  identity: () => Promise<Identity>;
  setTimer: (fn: () => void, ms: number) => { cancel(): void };
  metrics: AgentMetrics;
  exec?: Exec;
  /** Called after certificates were installed (the push channel reconnects on it). */
  onInstalled?: (kinds: CertKind[], state: AgentState) => void;
}

export interface RenewOutcome {
  renewed: { kind: CertKind; serial: string; notAfter: string }[];
  skipped: { kind: CertKind; reason: string }[];
  error?: string;
}

export class RenewError extends Error {}

export class Renewer {
  private inFlight: Promise<RenewOutcome> | undefined;
  private retryTimer: { cancel(): void } | undefined;
  private closed = false;
  consecutiveFailures = 0;
  nextAttemptAt: Date | undefined;
  lastError: string | undefined;
  lastDecisions: Decision[] = [];

  constructor(private d: RenewerDeps) {}

  updateConfig(config: AgentConfig): void {
    this.d = { ...this.d, config };
  }

  get config(): AgentConfig {
    return this.d.config;
  }

  /** The key algorithm in force: a pushed override (persisted) or the configured one. */
  private keyAlgorithmFor(state: AgentState | undefined): KeyAlgorithm {
    return (state?.keyAlgorithm as KeyAlgorithm | undefined) ?? this.d.config.keyAlgorithm;
  }

  async setKeyAlgorithm(alg: KeyAlgorithm): Promise<void> {
    // A pushed algorithm this process may not use (Ed25519 in FIPS mode) is refused, not stored.
    assertKeyAlgorithmAllowed(alg);
    const s = await readState(this.d.layout);
    if (s && s.keyAlgorithm !== alg) await writeState(this.d.layout, { ...s, keyAlgorithm: alg });
  }

  private evaluating: Promise<unknown> = Promise.resolve();

  /**
   * Decides for every certificate; draws and persists deadlines for new serials when `persist`.
   * Evaluations are serialized so two concurrent checks cannot draw two deadlines for one serial.
   */
  evaluate(persist = true): Promise<Decision[]> {
    const run = this.evaluating.catch(() => undefined).then(() => this.evaluateNow(persist));
    this.evaluating = run;
    return run;
  }

  private async evaluateNow(persist: boolean): Promise<Decision[]> {
    const { layout, config } = this.d;
    const now = this.d.clock();
    let state = await readState(layout);
    const identity = await this.d.identity();
    const trust = await fs.readFile(layout.caFile, "utf8").catch(() => undefined);
    let dirty = false;
    const decisions: Decision[] = [];
    for (const kind of KINDS) {
      const read = await readCurrentOutcome(layout, kind);
      const pem = read.state === "present" ? read.pem : undefined;
      const readError = read.state === "unreadable" ? read.reason : undefined;
      const renewAt = (notBefore: Date, notAfter: Date, serial: string) => {
        const rec = state?.certificates[kind];
        let drawn = rec?.serial === serial && rec.renewAt ? new Date(rec.renewAt) : undefined;
        if (!drawn) {
          // Without persistence (a read-only CLI) assume the earliest point, so "due" is never late.
          drawn = drawRenewAt(usableStart(notBefore, notAfter, now), notAfter, persist ? this.d.random() : 0);
          if (persist && state) {
            state = { ...state, certificates: { ...state.certificates, [kind]: { ...(rec ?? { file: layout.current(kind), installedAt: now.toISOString() }), serial, notAfter: notAfter.toISOString(), renewAt: drawn.toISOString() } } };
            dirty = true;
          }
        }
        return effectiveRenewAt(notAfter, drawn, config.renewBefore);
      };
      const dec = decide({ kind, pem, readError, now, renewAt, nodeName: state?.nodeName ?? identity.nodeName, servingSans: identity.servingSans, keyAlgorithm: this.keyAlgorithmFor(state), trustBundlePem: trust });
      dec.warning = this.lifetimeWarning(dec, now);
      decisions.push(dec);
      this.d.metrics.setCertificate(kind, dec.notAfter, dec.renewAt);
    }
    if (dirty && state) {
      // Best effort: a full or read-only disk must not stop the evaluation, nor the renewal that
      // follows (its own failure is reported). Unpersisted deadlines are drawn again next time.
      await writeState(layout, state).catch((e) => this.d.logger.warn("could not persist renewal deadlines", { error: (e as Error).message }));
    }
    this.lastDecisions = decisions;
    return decisions;
  }

  private warnedSerials = new Set<string>();

  /** A certificate too short-lived for the schedule: said once per serial, kept on the decision. */
  private lifetimeWarning(dec: Decision, now: Date): string | undefined {
    if (!dec.notBefore || !dec.notAfter || !dec.serial) return undefined;
    const usable = dec.notAfter.getTime() - usableStart(dec.notBefore, dec.notAfter, now).getTime();
    const warning = lifetimeTooShort(usable, scheduleGapMs(this.d.config.schedule), this.d.config.schedule);
    if (warning && !this.warnedSerials.has(dec.serial)) {
      if (this.warnedSerials.size > 64) this.warnedSerials.clear();
      this.warnedSerials.add(dec.serial);
      this.d.logger.warn("certificate lifetime too short for the renewal schedule", { kind: dec.kind, serial: dec.serial, warning });
    }
    return warning;
  }

  /** The scheduled check: evaluate, then renew what is due unless a backoff is pending. Never overlaps. */
  tick(): Promise<RenewOutcome> {
    // In flight from the first await on: the cron tick and the retry timer firing together must
    // not both evaluate and both renew one due certificate.
    if (this.inFlight) return this.inFlight;
    if (this.ticking) return this.ticking;
    const t = this.tickNow().finally(() => {
      if (this.ticking === t) this.ticking = undefined;
    });
    this.ticking = t;
    return t;
  }

  private ticking: Promise<RenewOutcome> | undefined;

  private async tickNow(): Promise<RenewOutcome> {
    const decisions = await this.evaluate();
    const due = decisions.filter((x) => x.action !== "ok");
    for (const x of decisions) this.d.logger.debug("certificate check", { kind: x.kind, action: x.action, reason: x.reason });
    if (!due.length) return { renewed: [], skipped: decisions.map((x) => ({ kind: x.kind, reason: x.reason })) };
    if (this.nextAttemptAt && this.d.clock() < this.nextAttemptAt) {
      return { renewed: [], skipped: due.map((x) => ({ kind: x.kind, reason: `backing off until ${this.nextAttemptAt!.toISOString()}` })) };
    }
    for (const x of due) this.d.logger.info("certificate needs renewal", { kind: x.kind, action: x.action, reason: x.reason });
    // Not forced: if another run got in first, this one re-decides on fresh state instead of
    // renewing what that run just renewed.
    return this.renew(due.map((x) => x.kind), { decisions });
  }

  /**
   * Renews `kinds` now (only those due unless `force`). Runs never overlap: a request that
   * arrives during a run waits for it, then runs on fresh decisions.
   */
  renew(kinds: CertKind[], o: { force?: boolean; decisions?: Decision[] } = {}): Promise<RenewOutcome> {
    const prev = this.inFlight;
    const opts = prev ? { ...o, decisions: undefined } : o;
    const run = (prev ? prev.catch(() => undefined) : Promise.resolve()).then(() => this.doRenew(kinds, opts));
    const tracked: Promise<RenewOutcome> = run.finally(() => {
      if (this.inFlight === tracked) this.inFlight = undefined;
    });
    this.inFlight = tracked;
    return tracked;
  }

  private async doRenew(kinds: CertKind[], o: { force?: boolean; decisions?: Decision[] }): Promise<RenewOutcome> {
    let decisions: Decision[];
    try {
      decisions = o.decisions ?? (await this.evaluate());
    } catch (e) {
      const message = `cannot evaluate the installed certificates: ${(e as Error).message}`;
      await this.onFailure(kinds, message);
      return { renewed: [], skipped: [], error: message };
    }
    const skipped: RenewOutcome["skipped"] = [];
    let todo = kinds;
    if (!o.force) {
      todo = kinds.filter((k) => decisions.find((x) => x.kind === k)?.action !== "ok");
      for (const k of kinds.filter((k) => !todo.includes(k))) skipped.push({ kind: k, reason: decisions.find((x) => x.kind === k)!.reason });
    }
    if (!todo.length) return { renewed: [], skipped };
    const clientDecision = decisions.find((x) => x.kind === "client");
    try {
      // An unreadable file is a broken disk or broken permissions, not a lost identity: say so and
      // retry, never spend the bootstrap token on it (a re-join would start a new lineage).
      if (clientDecision?.code === "unreadable") {
        throw new RenewError(`${clientDecision.reason}; not renewing and not re-joining until it can be read (check its permissions and the disk)`);
      }
      const clientUnusable = clientDecision !== undefined && CLIENT_UNUSABLE.includes(clientDecision.code);
      const token = clientUnusable ? await this.readToken() : undefined;
      let state: AgentState;
      let installed = todo;
      if (token) {
        try {
          state = await this.rejoin(token);
          installed = KINDS;
        } catch (e) {
          // A spent token left in the file must not hide the other way back: a server with
          // renewAfterExpiry accepts the expired certificate (the handshake proves its key).
          if (clientDecision!.code !== "expired") throw e;
          const rejoinError = (e as Error).message;
          state = await this.renewOverMtls(todo).catch((e2: Error) => {
            throw new RenewError(`re-join with the token in ${this.d.config.tokenFile} failed (${rejoinError}); renewal with the expired certificate failed too (${e2.message})`);
          });
          this.d.logger.warn("re-join with the token file failed; renewed with the expired certificate instead", { error: rejoinError });
        }
      } else {
        state = await this.renewOverMtls(todo);
      }
      this.onSuccess(installed);
      await this.afterInstall(installed, state);
      const renewed = installed.map((k) => ({ kind: k, serial: state.certificates[k]!.serial, notAfter: state.certificates[k]!.notAfter }));
      return { renewed, skipped };
    } catch (e) {
      const message = (e as Error).message;
      await this.onFailure(todo, message);
      return { renewed: [], skipped, error: message };
    }
  }

  private async readToken(): Promise<string | undefined> {
    const f = this.d.config.tokenFile;
    if (!f) return undefined;
    const t = await fs.readFile(f, "utf8").catch(() => "");
    return t.trim() || undefined;
  }

  private async rejoin(token: string): Promise<AgentState> {
    const { config, layout, logger } = this.d;
    const prev = await readState(layout);
    const server = config.server ?? prev?.server;
    const pin = config.caCertHash ?? prev?.caPin;
    if (!server || !pin) throw new RenewError("cannot join: set server and caCertHash in the agent configuration");
    logger.info(prev ? "client certificate unusable; re-joining with the bootstrap token" : "joining", { server });
    // Loaded on first use: key generation and CSRs bring the X.509 library, which an agent that
    // only watches its certificates between renewals does not need resident.
    const { join } = await import("./join.js");
    return join({ server, token, caCertHash: pin, layout, identity: await this.d.identity(), keyAlgorithm: this.keyAlgorithmFor(prev), now: this.d.clock, logger });
  }

  private async renewOverMtls(kinds: CertKind[]): Promise<AgentState> {
    const { config, layout, logger } = this.d;
    const state = await readState(layout);
    const clientPem = await readCurrent(layout, "client");
    if (!state || !clientPem) {
      throw new RenewError("the node has no client certificate and no bootstrap token: put a token in the configured tokenFile, or run 'nodecert join'");
    }
    const trust = await fs.readFile(layout.caFile, "utf8");
    const identity = await this.d.identity();
    const keys: Partial<Record<CertKind, { keyPem: string; csr: string }>> = {};
    const [{ createNodeCsr }, { exportPrivateKeyPem, generateKeyPair, importPrivateKeyPem }] = await Promise.all([import("../pki/csr.js"), import("../pki/keys.js")]); // on first use, as in rejoin()
    for (const kind of kinds) {
      const existing = config.reuseKey ? privateKeyBlock((await readCurrent(layout, kind)) ?? "") : undefined;
      const alg = this.keyAlgorithmFor(state);
      assertKeyAlgorithmAllowed(alg);
      const reusable = existing && (await importPrivateKeyPem(existing)).algorithm === alg ? existing : undefined;
      const pair = reusable ? await importPrivateKeyPem(reusable) : await generateKeyPair(alg);
      keys[kind] = {
        keyPem: reusable ?? (await exportPrivateKeyPem(pair.privateKey)),
        csr: await createNodeCsr({ kind, nodeName: state.nodeName, keys: pair, sans: kind === "serving" ? identity.servingSans : undefined }),
      };
    }
    const server = config.server ?? state.server;
    const body: RenewRequest = { v: PROTOCOL_VERSION, facts: identity.facts, csrs: { client: keys.client?.csr, serving: keys.serving?.csr } };
    const res = await requestJson(new URL("/v1/renew", server).toString(), { body, tls: { ca: trust, cert: clientPem, key: clientPem, controlPlane: true } });
    if (res.status !== 200) throw new RenewError(`renewal refused by ${server}: ${describeErrorBody(res.status, res.body)}`);
    const parsed = RenewResponse.safeParse(res.body);
    if (!parsed.success) throw new RenewError(`${server} sent a renewal response that does not match the protocol; nothing was installed`);
    const now = this.d.clock();
    const pairs: Partial<Record<CertKind, { chainPem: string; keyPem: string }>> = {};
    for (const kind of kinds) {
      const chainPem = parsed.data.certificates[kind];
      if (!chainPem) throw new RenewError(`${server} did not return the ${kind} certificate; nothing was installed`);
      verifyNodeCertificate(chainPem, keys[kind]!.keyPem, trust, { kind, nodeName: state.nodeName, sans: kind === "serving" ? identity.servingSans : undefined, now });
      pairs[kind] = { chainPem, keyPem: keys[kind]!.keyPem };
    }
    const installed = await applyInstall(layout, { nodeName: state.nodeName, server: state.server, caPin: state.caPin, apiServer: state.apiServer, caBundle: trust, pairs, at: now.toISOString() }, now);
    // Only now: a failed install must not log "renewed" and then "failed".
    logger.info("renewed", { kinds, server });
    return installed;
  }

  private onSuccess(kinds: CertKind[]): void {
    this.consecutiveFailures = 0;
    this.nextAttemptAt = undefined;
    this.lastError = undefined;
    this.retryTimer?.cancel();
    this.retryTimer = undefined;
    const at = this.d.clock();
    for (const k of kinds) this.d.metrics.renewalSucceeded(k, at);
  }

  private async afterInstall(kinds: CertKind[], state: AgentState): Promise<void> {
    const { layout, config, logger } = this.d;
    for (const k of KINDS) {
      const removed = await pruneOld(layout, k, config.keepFiles).catch(() => []);
      if (removed.length) logger.info("pruned old certificate files", { kind: k, removed });
    }
    const now = this.d.clock();
    const s = (await readState(layout)) ?? state;
    await writeState(layout, { ...s, lastSuccess: now.toISOString(), lastError: undefined });
    await clearJoinError(layout).catch(() => undefined);
    await this.evaluate(); // draws and persists deadlines for the new serials, refreshes metrics
    this.d.onInstalled?.(kinds, s);
    await runHooks(config.hooks, kinds, { logger, exec: this.d.exec, onFailure: (hook) => this.d.metrics.hookFailed(hook) });
  }

  private async onFailure(kinds: CertKind[], message: string): Promise<void> {
    const { logger, metrics, config } = this.d;
    const delay = backoffDelay(this.consecutiveFailures, { baseMs: config.backoff.initial, capMs: config.backoff.max, random: this.d.random });
    this.consecutiveFailures++;
    this.lastError = message;
    const now = this.d.clock();
    this.nextAttemptAt = new Date(now.getTime() + delay);
    metrics.renewalFailed(kinds);
    logger.error("renewal failed; the current certificates stay installed", { kinds, error: message, attempt: this.consecutiveFailures, retryInMs: delay });
    await recordLastError(this.d.layout, { at: now.toISOString(), message }).catch(() => undefined);
    this.retryTimer?.cancel();
    if (!this.closed) {
      this.retryTimer = this.d.setTimer(() => {
        this.retryTimer = undefined;
        this.nextAttemptAt = undefined;
        void this.tick();
      }, delay);
    }
  }

  /** Resolves once no renewal is running. */
  async idle(): Promise<void> {
    while (this.inFlight || this.ticking) await (this.inFlight ?? this.ticking)!.catch(() => undefined);
  }

  /** Waits for an in-flight renewal (an install is never cut in half by shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    this.retryTimer?.cancel();
    await this.inFlight?.catch(() => undefined);
  }
}
