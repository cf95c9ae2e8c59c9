// The control plane's Prometheus metrics: what it issued and denied (by kind and rule), token
// failures and store latency (counted through observedStore), and, read at each scrape, connected
// agents, rotation campaigns, the CA rotation and the CAs' expiry. Node names appear only in
// nodecert_agent_connected (one series per known node, as kube-state-metrics does per node).
import { X509Certificate } from "node:crypto";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { splitCertificates } from "../../pki/pem.js";
import type { AuditEvent, Store } from "../store/store.js";
import type { StoreObserver } from "./observed-store.js";

export interface ServerMetricSources {
  /** The unobserved store: scrapes must not count as store traffic. */
  store: Store;
  connectedNodes(): string[];
  caRotation: { state(): Promise<{ phase: string } | undefined>; status(): Promise<{ blockers: string[] }> };
  trustBundle(): string;
  intermediates(): string;
}

export const CA_PHASES = ["prepare", "switch", "finishing"] as const;

export class ServerMetrics implements StoreObserver {
  readonly registry = new Registry();
  private readonly issuedTotal: Counter<"kind">;
  private readonly deniedTotal: Counter<"kind" | "rule">;
  private readonly tokenFailures: Counter<"code">;
  private readonly storeLatency: Histogram<"operation">;
  private readonly storeErrors: Counter<"operation">;
  private sources: ServerMetricSources | undefined;

  constructor() {
    const registers = [this.registry];
    this.issuedTotal = new Counter({ name: "nodecert_certificates_issued_total", help: "Certificates signed, by kind (client, serving, server, admin)", labelNames: ["kind"], registers });
    this.deniedTotal = new Counter({ name: "nodecert_requests_denied_total", help: "Join and renewal requests denied, by request kind and the policy rule that denied them", labelNames: ["kind", "rule"], registers });
    this.tokenFailures = new Counter({ name: "nodecert_token_failures_total", help: "Bootstrap tokens refused, by reason code (unknown, expired, used, bad secret, ...)", labelNames: ["code"], registers });
    this.storeLatency = new Histogram({
      name: "nodecert_store_operation_duration_seconds",
      help: "Time a store operation took, by operation",
      labelNames: ["operation"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.storeErrors = new Counter({ name: "nodecert_store_operation_errors_total", help: "Store operations that failed, by operation", labelNames: ["operation"], registers });
    // prom-client calls collect() with the metric as `this`, so the server metrics need a name of their own.
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    new Gauge({
      name: "nodecert_agents_connected",
      help: "Agents connected to this server's fleet channel",
      registers,
      collect() {
        if (self.sources) this.set(self.sources.connectedNodes().length);
      },
    });
    new Gauge({
      name: "nodecert_agent_connected",
      help: "1 when the node's agent is connected to this server's fleet channel, 0 when not (known nodes that are not evicted)",
      labelNames: ["node"],
      registers,
      async collect() {
        this.reset();
        if (!self.sources) return;
        const connected = new Set(self.sources.connectedNodes());
        for (const n of await self.sources.store.listNodes()) if (!n.evictedAt) this.set({ node: n.name }, connected.has(n.name) ? 1 : 0);
      },
    });
    new Gauge({
      name: "nodecert_campaign_nodes",
      help: "Nodes of each running rotation campaign, by state (pending, in-flight, done, failed)",
      labelNames: ["campaign", "state"],
      registers,
      async collect() {
        this.reset();
        if (!self.sources) return;
        for (const c of await self.sources.store.listCampaigns()) {
          if (c.state !== "running") continue;
          for (const [state, n] of Object.entries(await self.sources.store.countCampaignNodes(c.id))) this.set({ campaign: c.id, state }, n);
        }
      },
    });
    new Gauge({
      name: "nodecert_campaigns",
      help: "Rotation campaigns by state (running, done, cancelled)",
      labelNames: ["state"],
      registers,
      async collect() {
        this.reset();
        if (!self.sources) return;
        const counts: Record<string, number> = { running: 0, done: 0, cancelled: 0 };
        for (const c of await self.sources.store.listCampaigns()) counts[c.state] = (counts[c.state] ?? 0) + 1;
        for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
      },
    });
    new Gauge({
      name: "nodecert_ca_rotation_phase",
      help: "1 for the phase a CA rotation is in (prepare, switch, finishing), 0 for the others; all 0 when none runs",
      labelNames: ["phase"],
      registers,
      async collect() {
        if (!self.sources) return;
        const s = await self.sources.caRotation.state();
        for (const p of CA_PHASES) this.set({ phase: p }, s?.phase === p ? 1 : 0);
      },
    });
    new Gauge({
      name: "nodecert_ca_rotation_blockers",
      help: "Nodes that keep the running CA rotation from advancing to its next phase",
      registers,
      async collect() {
        if (!self.sources) return;
        const s = await self.sources.caRotation.state();
        this.set(s && s.phase !== "done" ? (await self.sources.caRotation.status()).blockers.length : 0);
      },
    });
    new Gauge({
      name: "nodecert_ca_expiry_timestamp_seconds",
      help: "notAfter of each CA certificate the server trusts (anchor) or serves (intermediate)",
      labelNames: ["role", "subject", "fingerprint"],
      registers,
      collect() {
        this.reset();
        if (!self.sources) return;
        for (const [role, pem] of [["anchor", self.sources.trustBundle()], ["intermediate", self.sources.intermediates()]] as const) {
          for (const c of splitCertificates(pem)) {
            const x = new X509Certificate(c);
            this.set({ role, subject: x.subject.replace(/\n/g, ","), fingerprint: x.fingerprint256.replace(/:/g, "").toLowerCase().slice(0, 16) }, Date.parse(x.validTo) / 1000);
          }
        }
      },
    });
  }

  /** Where the scrape-time gauges read from; set once the server's parts exist. */
  attach(sources: ServerMetricSources): void {
    this.sources = sources;
  }

  storeCall(operation: string, seconds: number, failed: boolean): void {
    this.storeLatency.observe({ operation }, seconds);
    if (failed) this.storeErrors.inc({ operation });
  }

  issued(kind: string): void {
    this.issuedTotal.inc({ kind });
  }

  audit(e: AuditEvent): void {
    const denied = /^(join|renew)\.denied$/.exec(e.type);
    if (denied) this.deniedTotal.inc({ kind: denied[1], rule: e.rule ?? "unspecified" });
    else if (e.type === "token.rejected") this.tokenFailures.inc({ code: String((e.detail as { code?: unknown } | undefined)?.code ?? "unknown") });
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
