// Admin routes for the fleet, rotation campaigns and CA rotation. Every route requires the admin
// certificate: buildApi attaches that check to every route that is not node-facing.
import type { FastifyInstance } from "fastify";
import type * as z from "zod";
import { describeZodError } from "../../protocol/messages.js";
import { CaAdvanceRequest, CampaignRequest, CaRotateRequest, EvictRequest, type NodeView } from "../../protocol/admin.js";
import { HttpError } from "./errors.js";
import type { Store } from "../store/store.js";
import type { Hub } from "../fleet/hub.js";
import type { Campaigns } from "../fleet/campaigns.js";
import type { CaRotation } from "../fleet/ca-rotation.js";
import type { Logger } from "../../platform/log.js";
import { nodeSummary, registerAdminViews } from "./routes-admin-views.js";

function parse<T extends z.ZodTypeAny>(schema: T, body: unknown): z.infer<T> {
  const r = schema.safeParse(body ?? {});
  if (!r.success) throw new HttpError(400, "invalid-request", describeZodError(r.error));
  return r.data;
}

/** Registers the admin routes; buildApi attaches the admin-certificate check to each of them. */
export function registerAdminRoutes(
  app: FastifyInstance,
  d: {
    store: Store;
    /** The local Hub, or the ClusterHub that also reaches agents on other replicas. */
    hub: Pick<Hub, "connected" | "evict"> & { replicaOf?(node: string): string | undefined };
    campaigns: Campaigns;
    caRotation: CaRotation;
    logger: Logger;
    clock: () => Date;
    autoAdvance: boolean;
    /** Why a campaign may not switch nodes to this key algorithm (policy, FIPS), or undefined. */
    keyAlgorithmProblem?: (alg: string) => string | undefined;
  },
): void {
  app.get("/v1/admin/nodes", async (): Promise<{ nodes: NodeView[] }> => {
    const nodes = await d.store.listNodes();
    return {
      nodes: nodes.map((n) => ({
        ...nodeSummary(n, d.hub),
        certificates: (n.reported?.certificates ?? []).map(({ kind, serial, notAfter, keyAlgorithm }) => ({ kind, serial, notAfter, keyAlgorithm })),
      })),
    };
  });

  app.post<{ Params: { name: string } }>("/v1/admin/nodes/:name/evict", async (req) => {
    const body = parse(EvictRequest, req.body);
    const node = await d.store.getNode(req.params.name);
    if (!node) throw new HttpError(404, "unknown-node", `no node named "${req.params.name}"`);
    const now = d.clock();
    await d.store.setEvicted(node.name, now);
    await d.store.audit({ time: now, type: "node.evicted", node: node.name, source: req.ip, reason: body.reason });
    d.hub.evict(node.name, body.reason);
    d.logger.warn("node evicted", { node: node.name, reason: body.reason });
    return { node: node.name, evictedAt: now.toISOString() };
  });

  app.post("/v1/admin/campaigns", async (req) => {
    const body = parse(CampaignRequest, req.body);
    // Refuse up front what every node's renewal would be denied for, instead of failing the fleet.
    const problem = body.keyAlgorithm ? d.keyAlgorithmProblem?.(body.keyAlgorithm) : undefined;
    if (problem) throw new HttpError(400, "invalid-campaign", `cannot rotate to ${body.keyAlgorithm}: ${problem}`);
    try {
      const c = await d.campaigns.start({ nodes: body.all ? "all" : body.nodes!, maxInFlight: body.maxInFlight, which: body.which, keyAlgorithm: body.keyAlgorithm, reason: body.reason });
      return (await d.campaigns.status(c.id))!;
    } catch (e) {
      throw new HttpError(400, "invalid-campaign", (e as Error).message);
    }
  });

  app.get("/v1/admin/campaigns", async () => {
    const list = await d.store.listCampaigns();
    return { campaigns: await Promise.all(list.map(async (c) => (await d.campaigns.status(c.id))!)) };
  });

  app.get<{ Params: { id: string } }>("/v1/admin/campaigns/:id", async (req) => {
    const s = await d.campaigns.status(req.params.id);
    if (!s) throw new HttpError(404, "unknown-campaign", `no campaign "${req.params.id}"`);
    return s;
  });

  app.post("/v1/admin/ca/rotate", async (req) => {
    const body = parse(CaRotateRequest, req.body);
    try {
      await d.caRotation.start({ caCertPem: body.caCertPem, caKeyPem: body.caKeyPem });
      if (d.autoAdvance) await d.caRotation.advance(false);
    } catch (e) {
      throw new HttpError(409, "ca-rotation", (e as Error).message);
    }
    return d.caRotation.status();
  });

  app.post("/v1/admin/ca/advance", async (req) => {
    const body = parse(CaAdvanceRequest, req.body);
    // An operator's advance moves one phase at a time, so each can be watched.
    await d.caRotation.advance(body.force, { oneStep: true });
    return d.caRotation.status();
  });

  app.get("/v1/admin/ca", async () => d.caRotation.status());

  // The fleet dashboard's views (fleet, node detail, audit) and campaign cancel.
  registerAdminViews(app, d);
}
