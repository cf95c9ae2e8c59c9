// Whether the agent is ready (/readyz and systemd's READY=1 use the same condition), and the
// reporter that tells systemd: READY=1 once, when the client certificate is first valid, and
// STATUS= whenever readiness changes, so `systemctl status` says why. Serialized; a failed report
// is retried at the next check or install.
import type { Logger } from "../platform/log.js";
import type { NotifyResult, NotifyState } from "../platform/sd-notify.js";
import { SerialQueue } from "../platform/serial-queue.js";
import type { Readiness } from "./http/health.js";
import type { Renewer } from "./renewer.js";

export interface ReadinessInput {
  renewer: Pick<Renewer, "lastDecisions" | "consecutiveFailures" | "lastError">;
  evicted: () => { at: string; reason: string } | undefined;
  /** Why the agent runs degraded (an unwritable root), if it does. */
  degraded?: () => string | undefined;
  clock: () => Date;
  /** Not ready while renewals fail and the client certificate has less than this left (ms). */
  dangerWindow: () => number;
}

export function agentReadiness(i: ReadinessInput): () => Promise<Readiness> {
  return async () => {
    const evicted = i.evicted();
    if (evicted) return { ready: false, reason: `evicted by the control plane at ${evicted.at}: ${evicted.reason}` };
    const degraded = i.degraded?.();
    if (degraded) return { ready: false, reason: degraded };
    const client = i.renewer.lastDecisions.find((x) => x.kind === "client");
    if (!client || !client.notAfter) return { ready: false, reason: client?.reason ?? "not evaluated yet" };
    if (client.action === "urgent") return { ready: false, reason: `client certificate: ${client.reason}` };
    const left = client.notAfter.getTime() - i.clock().getTime();
    if (i.renewer.consecutiveFailures > 0 && left < i.dangerWindow()) {
      return { ready: false, reason: `client certificate expires in ${Math.round(left / 1000)}s and renewals are failing: ${i.renewer.lastError}` };
    }
    return { ready: true, reason: client.reason };
  };
}

export function systemdReporter(readiness: () => Promise<Readiness>, notify: (s: NotifyState) => Promise<NotifyResult>, log: Logger): () => Promise<void> {
  let notifiedReady = false;
  let lastStatus: string | undefined;
  const queue = new SerialQueue();
  return () =>
    queue
      .run(async () => {
        const r = await readiness();
        const status = `${r.ready ? "ready" : "not ready"}: ${r.reason}`;
        const ready = r.ready && !notifiedReady;
        if (!ready && status === lastStatus) return;
        const res = await notify({ ready: ready || undefined, status });
        if (res.outcome === "failed") {
          log.warn("could not report to systemd; retrying at the next check", { detail: res.detail });
          return;
        }
        if (ready && res.outcome === "sent") log.info("reported ready to systemd", { reason: r.reason });
        if (ready) notifiedReady = true;
        lastStatus = status;
      })
      .catch((e: Error) => {
        log.warn("could not report to systemd", { error: e.message });
      });
}
