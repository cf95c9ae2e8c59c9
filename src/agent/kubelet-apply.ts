// Verified apply: after a serving certificate is installed, proves that the kubelet serves it.
// Connects to agent.yaml's kubelet.servingAddress (TLS, reading the leaf only) every pollInterval
// until `wait` has passed on the injected clock; if the old certificate is still served then, runs
// the restart hook once and checks for another `wait`. The outcome is a log line, a metric and a
// record nodecert status shows. The client certificate cannot be observed from the node (the API
// server sees it): its outcome is "not-observable". Called from one place: after an install.
import { promises as fs } from "node:fs";
import tls from "node:tls";
import { X509Certificate } from "node:crypto";
import type { AgentConfig } from "../config/agent.js";
import type { CertKind } from "../pki/csr.js";
import { normalizeSerial } from "../pki/certificate-info.js";
import { splitCertificates } from "../pki/pem.js";
import type { Logger } from "../platform/log.js";
import { parseListen } from "../config/listen.js";
import { writeFileAtomic } from "../platform/files.js";
import { runHooks, type Exec } from "./hooks.js";
import type { NodeLayout } from "./layout.js";
import type { AgentMetrics } from "./metrics.js";
import type { ApplyOutcome } from "./kubelet-apply-metrics.js";
import { applyRecordFile, readApplyRecord, type KubeletApplyRecord } from "./kubelet-apply-record.js";

export type KubeletSettings = NonNullable<AgentConfig["kubelet"]>;

export interface ServedLeaf {
  serial: string;
  fingerprint256: string;
}

/** The leaf a TLS endpoint presents (no verification: only its identity is compared). */
export type Probe = (address: string, timeoutMs: number) => Promise<ServedLeaf>;

export const tlsProbe: Probe = (address, timeoutMs) =>
  new Promise((resolve, reject) => {
    const { host, port } = parseListen(address);
    const socket = tls.connect({ host, port, rejectUnauthorized: false, servername: undefined, timeout: timeoutMs });
    const fail = (e: Error) => {
      socket.destroy();
      reject(e);
    };
    socket.once("timeout", () => fail(new Error(`no TLS handshake with ${address} within ${timeoutMs} ms`)));
    socket.once("error", fail);
    socket.once("secureConnect", () => {
      const c = socket.getPeerX509Certificate();
      socket.end();
      if (!c) return reject(new Error(`${address} presented no certificate`));
      resolve({ serial: normalizeSerial(c.serialNumber), fingerprint256: c.fingerprint256.replace(/:/g, "").toLowerCase() });
    });
  });

export interface KubeletApplyDeps {
  settings: () => KubeletSettings | undefined;
  layout: NodeLayout;
  logger: Logger;
  clock: () => Date;
  setTimer: (fn: () => void, ms: number) => { cancel(): void };
  metrics: AgentMetrics;
  exec?: Exec;
  probe?: Probe;
}

export interface ApplyResult {
  kind: CertKind;
  outcome: ApplyOutcome;
  serial: string;
  served?: string;
  restarted: boolean;
  detail: string;
}

export class KubeletApply {
  private run: Promise<ApplyResult[]> = Promise.resolve([]);
  private generation = 0;
  private pending: { cancel(): void; fire(): void } | undefined;
  private closed = false;

  constructor(private readonly d: KubeletApplyDeps) {}

  /** Starts verifying what was just installed (a newer install supersedes a check in progress). */
  afterInstall(kinds: CertKind[]): void {
    const settings = this.d.settings();
    if (!settings || this.closed) return;
    const gen = ++this.generation;
    this.pending?.fire(); // wake a superseded run so it ends now
    this.run = this.run.catch(() => []).then(() => this.verify(kinds, settings, gen));
  }

  /** Resolves with the last run's results once it has finished. */
  idle(): Promise<ApplyResult[]> {
    return this.run;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.generation++;
    this.pending?.fire();
    await this.run.catch(() => undefined);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        this.pending = undefined;
        resolve();
      };
      const t = this.d.setTimer(finish, ms);
      this.pending = { cancel: () => t.cancel(), fire: () => (t.cancel(), finish()) };
    });
  }

  private async verify(kinds: CertKind[], s: KubeletSettings, gen: number): Promise<ApplyResult[]> {
    const results: ApplyResult[] = [];
    if (kinds.includes("serving")) {
      const r = await this.verifyServing(s, gen);
      if (r) results.push(r);
    }
    if (kinds.includes("client")) {
      const serial = await this.installedLeaf("client").then((l) => l?.serial ?? "").catch(() => "");
      results.push({ kind: "client", outcome: "not-observable", serial, restarted: false, detail: "the kubelet's client certificate is seen by the API server only; client-go re-reads kubelet-client-current.pem at most once a minute" });
    }
    if (gen !== this.generation) return results;
    for (const r of results) {
      this.d.metrics.kubeletApplied(r.kind, r.outcome, r.restarted);
      const level = r.outcome === "stale" || r.outcome === "unreachable" ? "error" : "info";
      this.d.logger[level]("verified apply", { kind: r.kind, outcome: r.outcome, serial: r.serial, served: r.served, restarted: r.restarted, detail: r.detail });
    }
    await this.record(results).catch((e: Error) => this.d.logger.warn("cannot record the verified-apply outcome for 'nodecert status'", { error: e.message }));
    return results;
  }

  private async installedLeaf(kind: CertKind): Promise<ServedLeaf | undefined> {
    const pem = await fs.readFile(this.d.layout.current(kind), "utf8");
    const first = splitCertificates(pem)[0];
    if (!first) return undefined;
    const c = new X509Certificate(first);
    return { serial: normalizeSerial(c.serialNumber), fingerprint256: c.fingerprint256.replace(/:/g, "").toLowerCase() };
  }

  private async verifyServing(s: KubeletSettings, gen: number): Promise<ApplyResult | undefined> {
    const probe = this.d.probe ?? tlsProbe;
    const want = await this.installedLeaf("serving").catch(() => undefined);
    if (!want) return undefined;
    let restarted = false;
    let deadline = this.d.clock().getTime() + s.wait;
    for (;;) {
      if (gen !== this.generation) return undefined;
      let served: ServedLeaf | undefined;
      let error: string | undefined;
      try {
        served = await probe(s.servingAddress, Math.min(s.pollInterval, 10_000));
      } catch (e) {
        error = (e as Error).message;
      }
      if (served?.fingerprint256 === want.fingerprint256) {
        return { kind: "serving", outcome: restarted ? "verified-after-restart" : "verified", serial: want.serial, served: served.serial, restarted, detail: `${s.servingAddress} serves serial ${served.serial}` };
      }
      if (this.d.clock().getTime() >= deadline) {
        const what = served ? `${s.servingAddress} still serves serial ${served.serial}, not the installed ${want.serial}` : `cannot read the certificate served on ${s.servingAddress}: ${error}`;
        if (restarted) return { kind: "serving", outcome: served ? "stale" : "unreachable", serial: want.serial, served: served?.serial, restarted, detail: `${what}, after the restart hook` };
        this.d.logger.warn("the kubelet does not serve the installed certificate; running the restart hook", { detail: what, waitedMs: s.wait });
        restarted = true;
        const hook = await runHooks([s.restartHook], ["serving"], { logger: this.d.logger, exec: this.d.exec, onFailure: (h) => this.d.metrics.hookFailed(h) });
        if (hook[0]?.outcome === "failed") return { kind: "serving", outcome: served ? "stale" : "unreachable", serial: want.serial, served: served?.serial, restarted, detail: `${what}; the restart hook failed: ${hook[0].detail}` };
        deadline = this.d.clock().getTime() + s.wait;
        continue;
      }
      await this.sleep(s.pollInterval);
    }
  }

  private async record(results: ApplyResult[]): Promise<void> {
    if (!results.length) return;
    const file = applyRecordFile(this.d.layout);
    const prev: KubeletApplyRecord = (await readApplyRecord(this.d.layout)) ?? {};
    const at = this.d.clock().toISOString();
    for (const r of results) prev[r.kind] = { outcome: r.outcome, serial: r.serial, served: r.served, restarted: r.restarted, at, detail: r.detail };
    await writeFileAtomic(file, JSON.stringify(prev, null, 2) + "\n", 0o600);
  }
}
