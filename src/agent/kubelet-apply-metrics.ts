// Verified apply's metrics (see kubelet-apply.ts): per certificate kind, the outcome of the last
// check that the kubelet uses what was installed, and how often the restart hook had to run.
import { Counter, Gauge, type Registry } from "prom-client";
import type { AgentMetrics } from "./metrics.js";

import { APPLY_OUTCOMES } from "./kubelet-apply-record.js";
export type { ApplyOutcome } from "./kubelet-apply-record.js";

export function kubeletApplyMetrics(m: AgentMetrics, registers: Registry[]): void {
  const v = m.values;
  new Gauge({
    name: "nodecert_kubelet_apply_outcome",
    help: "1 for the outcome of the last check that the kubelet uses the installed certificate (verified, verified-after-restart, stale, unreachable, not-observable), 0 for the others",
    labelNames: ["kind", "outcome"],
    registers,
    collect() {
      this.reset();
      for (const [kind, outcome] of v.kubeletApply) for (const o of APPLY_OUTCOMES) this.set({ kind, outcome: o }, o === outcome ? 1 : 0);
    },
  });
  new Counter({
    name: "nodecert_kubelet_restarts_total",
    help: "Restart hook runs by verified apply because the kubelet still served the previous certificate after the wait",
    labelNames: ["kind"],
    registers,
    collect() {
      this.reset();
      for (const [kind, n] of v.kubeletRestarts) this.inc({ kind }, n);
    },
  });
}
