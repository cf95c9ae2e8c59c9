// Admin views for the fleet dashboard (and any admin client): the fleet with renewal windows, one
// node in full, the audit log filtered, and cancelling a campaign. The admin-certificate check
// is attached by buildApi like on every other admin route; nothing here is reachable otherwise.
import type { FastifyInstance } from "fastify";
import { describeZodError } from "../../protocol/messages.js";
import { AuditQuery, CampaignCancelRequest, RENEW_WINDOW, type AuditEventView, type FleetCertificateView, type FleetNodeView, type FleetView, type NodeDetailView, type NodeView } from "../../protocol/admin.js";
import { nodeCommonName, NODE_ORG } from "../../pki/names.js";
import { HttpError } from "./errors.js";
import type { AuditEvent, IssuedCertRecord, NodeRecord, Store } from "../store/store.js";
import type { Hub } from "../fleet/hub.js";
import type { Campaigns } from "../fleet/campaigns.js";

/** How far back the views read the audit log (the store keeps it newest first). */
const AUDIT_SCAN = 10_000;

export interface ViewDeps {
  store: Store;
  hub: Pick<Hub, "connected"> & { replicaOf?(node: string): string | undefined };
  campaigns: Campaigns;
  clock: () => Date;
}

function auditView(e: AuditEvent): AuditEventView {
  return { time: e.time.toISOString(), type: e.type, node: e.node, source: e.source, rule: e.rule, reason: e.reason, detail: e.detail };
}

function at(notBefore: Date, notAfter: Date, f: number): string {
  return new Date(notBefore.getTime() + (notAfter.getTime() - notBefore.getTime()) * f).toISOString();
}

/** What `nodecert nodes` and the fleet view show of every node, apart from its certificates. */
export function nodeSummary(n: NodeRecord, hub: ViewDeps["hub"]): Omit<NodeView, "certificates"> {
  return {
    name: n.name,
    connected: hub.connected(n.name),
    replica: hub.replicaOf?.(n.name),
    evicted: !!n.evictedAt,
    lastSeen: n.lastSeen.toISOString(),
    lastHello: n.lastHello?.toISOString(),
    agentVersion: n.reported?.agentVersion ?? n.facts.agentVersion,
    fips: n.reported?.fips,
    cryptoProvider: n.reported?.cryptoProvider,
    addresses: n.reported?.addresses ?? n.facts.addresses,
  };
}

/** The fleet row of one node; `issued` finds the issuance record of a reported serial. */
function fleetNode(n: NodeRecord, d: ViewDeps, now: Date, issued: (serial: string) => IssuedCertRecord | undefined, lastRenewal: AuditEvent | undefined): FleetNodeView {
  const certificates: FleetCertificateView[] = (n.reported?.certificates ?? []).map((c) => {
    const rec = issued(c.serial);
    const v: FleetCertificateView = { kind: c.kind, serial: c.serial, notAfter: c.notAfter, keyAlgorithm: c.keyAlgorithm, issuer: c.issuer };
    if (rec) Object.assign(v, { notBefore: rec.notBefore.toISOString(), renewFrom: at(rec.notBefore, rec.notAfter, RENEW_WINDOW.opens), renewBy: at(rec.notBefore, rec.notAfter, RENEW_WINDOW.closes) });
    return v;
  });
  const opens = certificates.map((c) => c.renewFrom).filter((x): x is string => !!x).sort();
  let failing: string | undefined;
  if (lastRenewal?.type === "renew.denied") failing = `last renewal denied (${lastRenewal.rule ?? "?"}): ${lastRenewal.reason ?? ""}`;
  else {
    const late = certificates.find((c) => c.renewBy && Date.parse(c.renewBy) < now.getTime());
    if (late && !n.evictedAt) failing = `${late.kind} certificate ${late.serial} is past its renewal window (${late.renewBy}) and not renewed`;
  }
  return {
    ...nodeSummary(n, d.hub),
    certificates,
    nextRenewal: opens[0],
    ...(failing ? { failing } : {}),
  };
}

/** The newest renewal outcome (issued or denied) of each node in the scanned audit window. */
function lastRenewals(events: AuditEvent[]): Map<string, AuditEvent> {
  const m = new Map<string, AuditEvent>();
  for (const e of events) if (e.node && (e.type === "renew.issued" || e.type === "renew.denied") && !m.has(e.node)) m.set(e.node, e);
  return m;
}

export function registerAdminViews(app: FastifyInstance, d: ViewDeps): void {
  // Issuance records never change, so the fleet view keeps those of the certificates nodes report
  // (and only those: a rotated-away serial drops out at the next read). Reading every record each
  // time was half the cost of the view at 10,000 nodes (docs/BENCHMARKS.md, dashboard).
  let issuedCache = new Map<string, IssuedCertRecord>();
  app.get("/v1/admin/fleet", async (): Promise<FleetView> => {
    const now = d.clock();
    const [nodes, audit] = await Promise.all([d.store.listNodes(), d.store.listAudit(AUDIT_SCAN)]);
    const reported = nodes.flatMap((n) => (n.reported?.certificates ?? []).map((c) => c.serial));
    const missing = reported.filter((s) => !issuedCache.has(s));
    if (missing.length > 256) for (const c of await d.store.listCertificates()) issuedCache.set(c.serial, c);
    else for (const s of missing) {
      const c = await d.store.getCertificate(s);
      if (c) issuedCache.set(s, c);
    }
    const next = new Map<string, IssuedCertRecord>();
    for (const s of reported) {
      const c = issuedCache.get(s);
      if (c) next.set(s, c);
    }
    issuedCache = next;
    const renewals = lastRenewals(audit);
    return { now: now.toISOString(), nodes: nodes.map((n) => fleetNode(n, d, now, (s) => next.get(s), renewals.get(n.name))) };
  });

  app.get<{ Params: { name: string } }>("/v1/admin/nodes/:name", async (req): Promise<NodeDetailView> => {
    const now = d.clock();
    const n = await d.store.getNode(req.params.name);
    if (!n) throw new HttpError(404, "unknown-node", `no node named "${req.params.name}": 'nodecert nodes' lists the nodes the control plane knows`);
    const [certs, audit, campaigns, servingSans] = await Promise.all([d.store.listCertificates(n.name), d.store.listAudit(AUDIT_SCAN), d.store.listCampaigns(), d.store.liveServingSans(n.name, now)]);
    const bySerial = new Map(certs.map((c) => [c.serial, c]));
    const history = audit.filter((e) => e.node === n.name);
    const subject = `CN=${nodeCommonName(n.name)}, O=${NODE_ORG}`;
    const inCampaigns: NodeDetailView["campaigns"] = [];
    for (const c of campaigns) {
      const cn = await d.store.getCampaignNode(c.id, n.name);
      if (cn) inCampaigns.push({ id: c.id, state: cn.state, attempts: cn.attempts, lastError: cn.lastError, startedAt: cn.startedAt?.toISOString(), finishedAt: cn.finishedAt?.toISOString() });
    }
    return {
      ...fleetNode(n, d, now, (s) => bySerial.get(s), lastRenewals(history).get(n.name)),
      firstSeen: n.firstSeen.toISOString(),
      joinAddress: n.joinAddress,
      confirmedSerial: n.confirmedSerial,
      evictedAt: n.evictedAt?.toISOString(),
      facts: { ...n.facts },
      trustBundleSha256: n.reported?.trustBundleSha256,
      servingSans,
      issued: certs.reverse().map((c) => ({
        serial: c.serial,
        kind: c.kind,
        subject,
        notBefore: c.notBefore.toISOString(),
        notAfter: c.notAfter.toISOString(),
        issuedAt: c.issuedAt.toISOString(),
        issuerFingerprint: c.issuerFingerprint,
        fingerprint256: c.fingerprint256,
        sans: c.sans,
      })),
      campaigns: inCampaigns,
      history: history.slice(0, 200).map(auditView),
    };
  });

  app.get<{ Querystring: Record<string, string> }>("/v1/admin/audit", async (req): Promise<{ events: AuditEventView[]; scanned: number }> => {
    const q = AuditQuery.safeParse(req.query ?? {});
    if (!q.success) throw new HttpError(400, "invalid-request", describeZodError(q.error));
    const { node, rule, type, limit } = q.data;
    const since = q.data.since ? Date.parse(q.data.since) : -Infinity;
    const until = q.data.until ? Date.parse(q.data.until) : Infinity;
    const all = await d.store.listAudit(AUDIT_SCAN);
    const events = all.filter((e) => (!node || e.node === node) && (!rule || e.rule === rule) && (!type || e.type === type || e.type.startsWith(type + ".")) && e.time.getTime() >= since && e.time.getTime() <= until);
    return { events: events.slice(0, limit).map(auditView), scanned: all.length };
  });

  app.post<{ Params: { id: string } }>("/v1/admin/campaigns/:id/cancel", async (req) => {
    const body = CampaignCancelRequest.safeParse(req.body ?? {});
    if (!body.success) throw new HttpError(400, "invalid-request", describeZodError(body.error));
    const r = await d.campaigns.cancel(req.params.id, body.data.reason);
    if (r.code === "unknown-campaign") throw new HttpError(404, "unknown-campaign", `no campaign "${req.params.id}": 'nodecert rotations' lists them`);
    if (r.code === "not-running") throw new HttpError(409, "campaign-not-running", `campaign ${req.params.id} is ${r.campaign!.state}; only a running campaign can be cancelled`);
    return (await d.campaigns.status(req.params.id))!;
  });
}
