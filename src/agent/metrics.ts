// Prometheus metrics for the agent (prom-client), in a registry of its own so several agents can
// live in one process (tests, simulations).
import { Counter, Gauge, Registry } from "prom-client";
import type { CertKind } from "../pki/csr.js";
import type { CryptoReport } from "../crypto/fips-exec.js";

export class AgentMetrics {
  readonly registry = new Registry();
  private readonly expiries = new Map<CertKind, number>();

  readonly expiry = new Gauge({ name: "nodecert_certificate_expiry_timestamp_seconds", help: "notAfter of the installed certificate", labelNames: ["kind"], registers: [this.registry] });
  readonly ttl: Gauge;
  readonly renewals = new Counter({ name: "nodecert_renewals_total", help: "Renewal attempts by result", labelNames: ["kind", "result"], registers: [this.registry] });
  readonly renewalErrors = new Counter({ name: "nodecert_renewal_errors_total", help: "Failed renewal attempts", registers: [this.registry] });
  readonly lastSuccess = new Gauge({ name: "nodecert_last_renewal_success_timestamp_seconds", help: "Time of the last successful renewal", labelNames: ["kind"], registers: [this.registry] });
  readonly nextRenewal = new Gauge({ name: "nodecert_next_renewal_timestamp_seconds", help: "When the certificate is due for renewal", labelNames: ["kind"], registers: [this.registry] });
  readonly hookFailures = new Counter({ name: "nodecert_hook_failures_total", help: "Reload hook failures", labelNames: ["hook"], registers: [this.registry] });
  readonly ready = new Gauge({ name: "nodecert_ready", help: "1 when the client certificate is valid and renewals are healthy", registers: [this.registry] });

  readonly fips = new Gauge({ name: "nodecert_fips_mode", help: "1 when the agent runs on a self-tested FIPS provider", labelNames: ["provider", "mode"], registers: [this.registry] });
  readonly selfTest = new Gauge({ name: "nodecert_crypto_self_test_passed", help: "1 when the startup crypto self-test passed", registers: [this.registry] });

  constructor(clock: () => Date) {
    const expiries = this.expiries;
    this.ttl = new Gauge({
      name: "nodecert_certificate_ttl_seconds",
      help: "Seconds until the installed certificate expires",
      labelNames: ["kind"],
      registers: [this.registry],
      collect() {
        for (const [kind, t] of expiries) this.set({ kind }, Math.round((t - clock().getTime()) / 1000));
      },
    });
  }

  setCrypto(r: CryptoReport): void {
    const provider = `${r.provider.name}${r.provider.version ? ` ${r.provider.version}` : ""}`;
    this.fips.set({ provider, mode: r.mode }, r.fips ? 1 : 0);
    this.selfTest.set(r.selfTest.ok ? 1 : 0);
  }

  setCertificate(kind: CertKind, notAfter: Date | undefined, renewAt: Date | undefined): void {
    if (notAfter) {
      this.expiries.set(kind, notAfter.getTime());
      this.expiry.set({ kind }, notAfter.getTime() / 1000);
    }
    if (renewAt) this.nextRenewal.set({ kind }, renewAt.getTime() / 1000);
  }
}
