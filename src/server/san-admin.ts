// Admin routes for the serving SANs an operator grants a node: list, approve, revoke. Every route
// requires the admin certificate (buildApi attaches that check to every non-node route).
import type { FastifyInstance } from "fastify";
import type { z } from "zod";
import { describeZodError } from "../protocol/messages.js";
import { SanApprovalRequest, type AllowedSanView, type NodeSansView } from "../protocol/admin.js";
import type { Logger } from "../platform/log.js";
import { HttpError } from "./http/errors.js";
import type { PolicyConfig } from "./policy.js";
import { allowedSans, parseSanValue } from "./san-policy.js";
import { validateGrants } from "./san-registry.js";
import type { Store } from "./store/store.js";

function parse<T extends z.ZodTypeAny>(schema: T, body: unknown): z.infer<T> {
  const r = schema.safeParse(body ?? {});
  if (!r.success) throw new HttpError(400, "invalid-request", describeZodError(r.error));
  return r.data;
}

export function registerSanRoutes(app: FastifyInstance, d: { store: Store; policy: PolicyConfig; clock: () => Date; logger: Logger }): void {
  const knownNode = async (name: string) => {
    const node = await d.store.getNode(name);
    if (!node) {
      throw new HttpError(404, "unknown-node", `no node named "${name}": SANs for a node that has not joined yet are bound to its token ('nodecert token create --node ${name} --san ...')`);
    }
    return node;
  };

  app.get<{ Params: { name: string } }>("/v1/admin/nodes/:name/sans", async (req): Promise<NodeSansView> => {
    const node = await knownNode(req.params.name);
    const now = d.clock();
    const grants = await d.store.listSanGrants(node.name);
    const created = new Map(grants.map((g) => [`${g.kind}:${g.value}`, g.createdAt.toISOString()]));
    const a = allowedSans(node.name, { joinAddress: node.joinAddress, grants, nodeGroups: d.policy.nodeGroups });
    const allowed: AllowedSanView[] = [
      ...[...a.dns].map(([value, source]) => ({ kind: "dns" as const, value, source, createdAt: created.get(`dns:${value}`) })),
      ...[...a.ip].map(([value, source]) => ({ kind: "ip" as const, value, source, createdAt: created.get(`ip:${value}`) })),
      ...a.cidrs.map((c) => ({ kind: "cidr" as const, value: c.cidr, source: c.source, createdAt: created.get(`cidr:${c.cidr}`) })),
    ];
    return { node: node.name, allowed, held: await d.store.liveServingSans(node.name, now) };
  });

  app.post<{ Params: { name: string } }>("/v1/admin/nodes/:name/sans", async (req) => {
    const node = await knownNode(req.params.name);
    const body = parse(SanApprovalRequest, req.body);
    const now = d.clock();
    const grants = await validateGrants(d.store, d.policy, node.name, body.sans.map((value) => ({ value })), "operator", now);
    await d.store.addSanGrants(node.name, grants, { time: now, type: "san.approved", node: node.name, source: req.ip, detail: { sans: grants.map((g) => g.value) } });
    d.logger.info("serving SANs approved", { node: node.name, sans: grants.map((g) => g.value) });
    return { node: node.name, approved: grants.map((g) => ({ kind: g.kind, value: g.value })) };
  });

  app.post<{ Params: { name: string } }>("/v1/admin/nodes/:name/sans/revoke", async (req) => {
    const node = await knownNode(req.params.name);
    const body = parse(SanApprovalRequest, req.body);
    const now = d.clock();
    const grants = await d.store.listSanGrants(node.name);
    const wanted = body.sans.map((s) => {
      const p = parseSanValue(s);
      return "problem" in p ? s.trim().toLowerCase() : p.value;
    });
    const matches = grants.filter((g) => wanted.includes(g.value));
    const missing = wanted.filter((w) => !matches.some((g) => g.value === w));
    if (missing.length) throw new HttpError(404, "unknown-san", `node "${node.name}" has no approval for ${missing.join(", ")} (its approvals: ${grants.map((g) => g.value).join(", ") || "none"}); the node name, join address and policy.nodeGroups cannot be revoked here`);
    const removed = await d.store.removeSanGrants(node.name, matches, { time: now, type: "san.revoked", node: node.name, source: req.ip, detail: { sans: matches.map((g) => g.value) } });
    d.logger.info("serving SAN approvals revoked", { node: node.name, sans: matches.map((g) => g.value) });
    return { node: node.name, revoked: removed };
  });
}
