// The kubelet's own certificate-manager metrics, with the kubelet's names, types and meaning, so
// the kube-prometheus alerts and Grafana panels people already run (KubeletClientCertificateExpiration,
// KubeletServerCertificateRenewalErrors, ...) work on nodes whose certificates nodecert manages.
// The kubelet exposes these counters without the "_total" suffix; so do we (renaming them would
// break those alerts), which is the one lint note `promtool check metrics` reports for them.
import { Counter, Gauge, type Registry } from "prom-client";
import type { AgentMetrics } from "./metrics.js";
import type { CertKind } from "../pki/csr.js";

export const KUBELET_COUNTERS_WITHOUT_TOTAL = ["kubelet_certificate_manager_client_expiration_renew_errors", "kubelet_server_expiration_renew_errors"];

export function kubeletNamed(m: AgentMetrics, registers: Registry[]): void {
  const v = m.values;
  // Like the kubelet: seconds until notAfter (negative once expired), +Inf when there is no
  // usable certificate of that kind.
  const ttl = (kind: CertKind) => {
    const t = v.expiry.get(kind);
    return t === undefined ? Number.POSITIVE_INFINITY : (t - m.clock().getTime()) / 1000;
  };
  const failures = (kind: CertKind) => v.renewals.get(`${kind} failure`)?.count ?? 0;
  new Gauge({
    name: "kubelet_certificate_manager_client_ttl_seconds",
    help: "Gauge of the TTL (time-to-live) of the Kubelet's client certificate. The value is in seconds until certificate expiry (negative if already expired). If client certificate is invalid or unused, the value will be +INF.",
    registers,
    collect() {
      this.set(ttl("client"));
    },
  });
  new Gauge({
    name: "kubelet_certificate_manager_server_ttl_seconds",
    help: "Gauge of the shortest TTL (time-to-live) of the Kubelet's serving certificate. The value is in seconds until certificate expiry (negative if already expired). If serving certificate is invalid or unused, the value will be +INF.",
    registers,
    collect() {
      this.set(ttl("serving"));
    },
  });
  new Counter({
    name: "kubelet_certificate_manager_client_expiration_renew_errors",
    help: "Counter of certificate renewal errors.",
    registers,
    collect() {
      this.reset();
      this.inc(failures("client"));
    },
  });
  new Counter({
    name: "kubelet_server_expiration_renew_errors",
    help: "Counter of certificate renewal errors.",
    registers,
    collect() {
      this.reset();
      this.inc(failures("serving"));
    },
  });
}
