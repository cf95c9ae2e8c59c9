// The agent's metrics in a prom-client registry of their own, read from AgentMetrics' plain
// values at every scrape (collect callbacks), so the names, types and help texts stay
// prom-client's business. Loaded lazily by AgentMetrics.render().
import { Counter, Gauge, Registry } from "prom-client";
import type { AgentMetrics, RenderedMetrics } from "./metrics.js";
import { kubeletNamed } from "./metrics-kubelet.js";
import { kubeletApplyMetrics } from "./kubelet-apply-metrics.js";

export function promRenderer(m: AgentMetrics): () => Promise<RenderedMetrics> {
  const v = m.values;
  const registry = new Registry();
  const registers = [registry];
  const s = (ms: number) => ms / 1000;
  new Gauge({
    name: "nodecert_certificate_expiry_timestamp_seconds",
    help: "notAfter of the installed certificate",
    labelNames: ["kind"],
    registers,
    collect() {
      for (const [kind, t] of v.expiry) this.set({ kind }, s(t));
    },
  });
  new Gauge({
    name: "nodecert_certificate_ttl_seconds",
    help: "Seconds until the installed certificate expires",
    labelNames: ["kind"],
    registers,
    collect() {
      for (const [kind, t] of v.expiry) this.set({ kind }, Math.round((t - m.clock().getTime()) / 1000));
    },
  });
  new Counter({
    name: "nodecert_renewals_total",
    help: "Renewal attempts by result",
    labelNames: ["kind", "result"],
    registers,
    collect() {
      this.reset();
      for (const c of v.renewals.values()) this.inc({ kind: c.kind, result: c.result }, c.count);
    },
  });
  new Counter({
    name: "nodecert_renewal_errors_total",
    help: "Failed renewal attempts",
    registers,
    collect() {
      this.reset();
      if (v.renewalErrors) this.inc(v.renewalErrors);
    },
  });
  new Gauge({
    name: "nodecert_last_renewal_success_timestamp_seconds",
    help: "Time of the last successful renewal",
    labelNames: ["kind"],
    registers,
    collect() {
      for (const [kind, t] of v.lastSuccess) this.set({ kind }, s(t));
    },
  });
  new Gauge({
    name: "nodecert_next_renewal_timestamp_seconds",
    help: "When the certificate is due for renewal",
    labelNames: ["kind"],
    registers,
    collect() {
      for (const [kind, t] of v.nextRenewal) this.set({ kind }, s(t));
    },
  });
  new Counter({
    name: "nodecert_hook_failures_total",
    help: "Reload hook failures",
    labelNames: ["hook"],
    registers,
    collect() {
      this.reset();
      for (const [hook, n] of v.hookFailures) this.inc({ hook }, n);
    },
  });
  new Gauge({
    name: "nodecert_ready",
    help: "1 when the client certificate is valid and renewals are healthy",
    registers,
    collect() {
      this.set(v.ready ? 1 : 0);
    },
  });
  new Gauge({
    name: "nodecert_fips_mode",
    help: "1 when the agent runs on a self-tested FIPS provider",
    labelNames: ["provider", "mode"],
    registers,
    collect() {
      if (v.crypto) this.set({ provider: v.crypto.provider, mode: v.crypto.mode }, v.crypto.fips ? 1 : 0);
    },
  });
  new Gauge({
    name: "nodecert_crypto_self_test_passed",
    help: "1 when the startup crypto self-test passed",
    registers,
    collect() {
      if (v.crypto) this.set(v.crypto.selfTestPassed ? 1 : 0);
    },
  });
  new Gauge({
    name: "nodecert_danger_window_seconds",
    help: "The configured danger window: a certificate whose TTL falls below it while renewals fail makes the agent not ready",
    registers,
    collect() {
      if (v.dangerWindowMs !== undefined) this.set(s(v.dangerWindowMs));
    },
  });
  kubeletNamed(m, registers);
  kubeletApplyMetrics(m, registers);
  return async () => ({ contentType: registry.contentType, body: await registry.metrics() });
}
