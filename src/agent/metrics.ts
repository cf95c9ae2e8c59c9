// The agent's metrics. The values live here as plain numbers (the renewer and the health server
// set them); prom-client, which renders them in the Prometheus text format, is loaded only when
// /metrics is first scraped, so an agent nobody scrapes (and the one-shot CLI verbs) never pays
// for it. One instance per agent, so several agents can live in one process (tests, simulations).
import type { CertKind } from "../pki/csr.js";
import type { CryptoReport } from "../crypto/fips-exec.js";
import type { ApplyOutcome } from "./kubelet-apply-metrics.js";

export interface MetricValues {
  /** notAfter per kind, ms since the epoch. */
  expiry: Map<CertKind, number>;
  /** When each kind is due, ms since the epoch. */
  nextRenewal: Map<CertKind, number>;
  /** Last successful renewal per kind, ms since the epoch. */
  lastSuccess: Map<CertKind, number>;
  /** Renewal attempts by "kind result". */
  renewals: Map<string, { kind: CertKind; result: "success" | "failure"; count: number }>;
  renewalErrors: number;
  hookFailures: Map<string, number>;
  ready: boolean;
  /** agent.yaml's dangerWindow, ms: alerts compare the TTL with it. */
  dangerWindowMs?: number;
  /** Verified apply: the last outcome per kind, and restart-hook runs per kind. */
  kubeletApply: Map<CertKind, ApplyOutcome>;
  kubeletRestarts: Map<CertKind, number>;
  crypto?: { provider: string; mode: string; fips: boolean; selfTestPassed: boolean };
}

export interface RenderedMetrics {
  contentType: string;
  body: string;
}

export class AgentMetrics {
  readonly values: MetricValues = { expiry: new Map(), nextRenewal: new Map(), lastSuccess: new Map(), renewals: new Map(), renewalErrors: 0, hookFailures: new Map(), ready: false, kubeletApply: new Map(), kubeletRestarts: new Map() };
  private renderer: Promise<() => Promise<RenderedMetrics>> | undefined;

  constructor(readonly clock: () => Date) {}

  setCrypto(r: CryptoReport): void {
    this.values.crypto = { provider: `${r.provider.name}${r.provider.version ? ` ${r.provider.version}` : ""}`, mode: r.mode, fips: r.fips, selfTestPassed: r.selfTest.ok };
  }

  setCertificate(kind: CertKind, notAfter: Date | undefined, renewAt: Date | undefined): void {
    if (notAfter) this.values.expiry.set(kind, notAfter.getTime());
    if (renewAt) this.values.nextRenewal.set(kind, renewAt.getTime());
  }

  renewalSucceeded(kind: CertKind, at: Date): void {
    this.count(kind, "success");
    this.values.lastSuccess.set(kind, at.getTime());
  }

  renewalFailed(kinds: CertKind[]): void {
    this.values.renewalErrors++;
    for (const k of kinds) this.count(k, "failure");
  }

  hookFailed(hook: string): void {
    this.values.hookFailures.set(hook, (this.values.hookFailures.get(hook) ?? 0) + 1);
  }

  kubeletApplied(kind: CertKind, outcome: ApplyOutcome, restarted: boolean): void {
    this.values.kubeletApply.set(kind, outcome);
    if (restarted) this.values.kubeletRestarts.set(kind, (this.values.kubeletRestarts.get(kind) ?? 0) + 1);
  }

  setDangerWindow(ms: number): void {
    this.values.dangerWindowMs = ms;
  }

  setReady(ready: boolean): void {
    this.values.ready = ready;
  }

  /** The Prometheus exposition of the current values (loads prom-client on first use). */
  async render(): Promise<RenderedMetrics> {
    this.renderer ??= import("./metrics-registry.js").then((m) => m.promRenderer(this));
    return (await this.renderer)();
  }

  private count(kind: CertKind, result: "success" | "failure"): void {
    const key = `${kind} ${result}`;
    const c = this.values.renewals.get(key) ?? { kind, result, count: 0 };
    c.count++;
    this.values.renewals.set(key, c);
  }
}
