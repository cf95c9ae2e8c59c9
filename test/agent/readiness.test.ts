import { strict as assert } from "node:assert";
import { agentReadiness, systemdReporter } from "../../src/agent/readiness.js";
import type { Decision } from "../../src/agent/decision.js";
import type { NotifyState } from "../../src/platform/sd-notify.js";
import { quietLogger } from "../support/helpers.js";

const now = new Date("2026-05-01T00:00:00Z");
const client = (over: Partial<Decision> = {}): Decision => ({ kind: "client", action: "ok", code: "ok", reason: "valid until later", notAfter: new Date(now.getTime() + 3_600_000), ...over });

describe("agent/readiness: /readyz and systemd from one condition", () => {
  it("ready with a valid client certificate; not ready when evicted, urgent, or failing inside the danger window", async () => {
    const renewer = { lastDecisions: [client()], consecutiveFailures: 0, lastError: undefined as string | undefined };
    let evicted: { at: string; reason: string } | undefined;
    const ready = agentReadiness({ renewer, evicted: () => evicted, clock: () => now, dangerWindow: () => 7_200_000 });
    assert.deepEqual(await ready(), { ready: true, reason: "valid until later" });
    renewer.consecutiveFailures = 1;
    renewer.lastError = "server down";
    assert.match((await ready()).reason, /expires in 3600s and renewals are failing: server down/);
    renewer.consecutiveFailures = 0;
    renewer.lastDecisions = [client({ action: "urgent", code: "expired", reason: "certificate expired" })];
    assert.deepEqual(await ready(), { ready: false, reason: "client certificate: certificate expired" });
    evicted = { at: "2026-04-01T00:00:00Z", reason: "decommissioned" };
    assert.equal((await ready()).ready, false);
    assert.match((await ready()).reason, /evicted by the control plane at 2026-04-01T00:00:00Z: decommissioned/);
  });

  it("systemd hears READY=1 once and STATUS= only when it changes; a failed report is retried", async () => {
    let r = { ready: false, reason: "not evaluated yet" };
    const sent: NotifyState[] = [];
    let fail = false;
    const sync = systemdReporter(async () => r, async (s) => (fail ? { outcome: "failed", detail: "socket gone" } : (sent.push(s), { outcome: "sent" })), quietLogger());
    await sync();
    await sync();
    r = { ready: true, reason: "valid" };
    fail = true;
    await sync();
    fail = false;
    await sync();
    await sync();
    assert.deepEqual(sent, [{ ready: undefined, status: "not ready: not evaluated yet" }, { ready: true, status: "ready: valid" }]);
  });
});
