// What the control plane knows about a node's serving SANs, read from its store: the sources that
// grant them (join address, approvals, token bindings, node groups) and who else holds them.
// Issuance and the admin routes both ask here, so a SAN is judged the same way everywhere.
import { isIP } from "node:net";
import { normalizeIp, type SanSet } from "../pki/names.js";
import { parseListen, type ServerConfig } from "../config/server.js";
import { tokenGrants, type TokenRecord } from "./tokens.js";
import type { SanGrant, Store } from "./store/store.js";
import { HttpError } from "./http/errors.js";
import { cidrList, type PolicyConfig } from "./policy.js";
import { allowedSans, controlPlaneSans, parseSanValue, refusedSan, sanKey, type SanContext, type SanHolder, type SanKind, type SanPolicyConfig } from "./san-policy.js";

/** The SAN part of the policy for this server: server.yaml's settings plus its own identity. */
export function serverSanPolicy(config: ServerConfig): SanPolicyConfig {
  return {
    controlPlane: controlPlaneSans({ sans: config.sans, listenHost: parseListen(config.listen).host, apiServerUrl: config.apiServerUrl }),
    serviceCidrs: config.policy.serviceCidrs,
    allowLoopbackSans: config.policy.allowLoopbackSans,
    allowLinkLocalSans: config.policy.allowLinkLocalSans,
    nodeGroups: config.policy.nodeGroups,
  };
}

async function heldByOthers(store: Store, node: string, sans: { kind: SanKind; value: string }[], now: Date): Promise<Map<string, SanHolder>> {
  const held = new Map<string, SanHolder>();
  if (!sans.length) return held;
  for (const h of await store.sanHolders(sans, node, now)) held.set(sanKey(h.kind, h.value), { node: h.node, via: h.via });
  return held;
}

/**
 * The context the policy judges `requested` in. At join, `joinAddress` is this request's source
 * and `token` the token used (its SANs are not recorded yet); at renewal, what the store has.
 */
export async function sanContext(
  store: Store,
  policy: SanPolicyConfig,
  node: string,
  requested: SanSet,
  now: Date,
  o: { joinAddress?: string; connectionAddress?: string; token?: TokenRecord },
): Promise<SanContext> {
  const grants = [...(await store.listSanGrants(node)), ...(o.token ? tokenGrants(o.token.id, o.token.sans, now) : [])];
  const joinAddress = o.joinAddress && isIP(o.joinAddress) ? normalizeIp(o.joinAddress) : undefined;
  const connectionAddress = o.connectionAddress && isIP(o.connectionAddress) ? normalizeIp(o.connectionAddress) : undefined;
  const list = [...requested.dns.map((value) => ({ kind: "dns" as const, value })), ...requested.ip.map((value) => ({ kind: "ip" as const, value }))];
  return { allowed: allowedSans(node, { joinAddress, connectionAddress, grants, nodeGroups: policy.nodeGroups }), heldByOthers: await heldByOthers(store, node, list, now) };
}

/**
 * Checks SANs an operator wants to grant `node` (approve-san, or a token's --san/--cidr) and
 * returns them as grants. Anything the policy would refuse at issuance is refused now, with its
 * rule, instead of failing the node later.
 */
export async function validateGrants(store: Store, policy: PolicyConfig, node: string, values: { value: string; cidr?: boolean }[], source: string, now: Date): Promise<SanGrant[]> {
  const grants: SanGrant[] = [];
  for (const v of values) {
    const parsed = parseSanValue(v.value);
    if ("problem" in parsed) throw new HttpError(400, "invalid-san", parsed.problem);
    if (v.cidr && parsed.kind !== "cidr") throw new HttpError(400, "invalid-san", `"${v.value}" is not a CIDR (address/prefix)`);
    if (!v.cidr && parsed.kind === "cidr" && source.startsWith("token:")) throw new HttpError(400, "invalid-san", `"${v.value}" is a CIDR: pass it as a cidr, not a SAN`);
    grants.push({ kind: parsed.kind, value: parsed.value, source, createdAt: now });
  }
  const exact = grants.filter((g): g is SanGrant & { kind: SanKind } => g.kind !== "cidr");
  const held = await heldByOthers(store, node, exact, now);
  for (const g of exact) {
    const refused = refusedSan(g.kind, g.value, policy, held);
    if (refused) throw new HttpError(403, "denied", refused.reason, refused.rule);
    if (g.kind === "ip" && !cidrList(policy.allowedCidrs).check(g.value, isIP(g.value) === 6 ? "ipv6" : "ipv4")) {
      throw new HttpError(403, "denied", `IP SAN ${g.value} is outside policy.allowedCidrs (${policy.allowedCidrs.join(", ")})`, "serving-sans-allowed");
    }
    if (g.kind === "dns" && !policy.allowedDnsPatterns.some((p) => new RegExp(p).test(g.value))) {
      throw new HttpError(403, "denied", `DNS SAN "${g.value}" matches none of policy.allowedDnsPatterns (${policy.allowedDnsPatterns.join(", ")})`, "serving-sans-allowed");
    }
  }
  return grants;
}

/** The SANs a new token binds (`token create --node N --san ... --cidr ...`), checked as grants for N. */
export async function tokenSans(store: Store, policy: PolicyConfig, t: { node?: string; sans?: string[]; cidrs?: string[] }, tokenId: string, now: Date): Promise<TokenRecord["sans"]> {
  if (!t.node || (!t.sans?.length && !t.cidrs?.length)) return undefined;
  const values = [...(t.sans ?? []).map((value) => ({ value })), ...(t.cidrs ?? []).map((value) => ({ value, cidr: true }))];
  const grants = await validateGrants(store, policy, t.node, values, `token:${tokenId}`, now);
  const of = (kind: SanGrant["kind"]) => grants.filter((g) => g.kind === kind).map((g) => g.value);
  return { dns: of("dns"), ip: of("ip"), cidrs: of("cidr") };
}
