// CSR approval policy as named rules. Pure: every denial names its rule and says why.
import { type BlockList, isIP } from "node:net";
import type { ParsedCsr } from "../pki/csr.js";
import { EKU_CLIENT_AUTH, EKU_SERVER_AUTH } from "../pki/certificate-info.js";
import { dns1123SubdomainProblem, NODE_ORG, nodeCommonName } from "../pki/names.js";
import type { KeyAlgorithm } from "../pki/key-algorithms.js";
import { POLICY_DEFAULTS } from "../config/server-defaults.js";
import type { NodeFacts } from "../protocol/messages.js";
import { fipsKeyAlgorithmDecision, fipsSignatureHashDecision } from "../crypto/fips-policy.js";
import { ALWAYS_REFUSED, blockList, describeAllowed, loopbackExempt, OTHER_NODE_RULE, otherNodeReason, sanKey, sanSource, type SanContext, type SanKind, type SanPolicyConfig } from "./san-policy.js";

export interface PolicyConfig extends SanPolicyConfig {
  /** IP SANs must fall inside one of these (like kubelet-csr-approver's provider-ip-prefixes). */
  allowedCidrs: string[];
  /** DNS SANs must match one of these regular expressions (like provider-regex). */
  allowedDnsPatterns: string[];
  minRsaBits: number;
  allowedKeyAlgorithms: KeyAlgorithm[];
  /** The server runs on the FIPS provider: keys and CSR signatures must be FIPS-approved. */
  fips?: boolean;
  /** Only agents that report a passing FIPS self-test may join or renew. */
  requireFipsNodes?: boolean;
}

/** The only RSA public exponent signed (65537, F4). */
export const RSA_EXPONENT = 65537n;

export const DEFAULT_POLICY: PolicyConfig = POLICY_DEFAULTS;

export interface RequestContext {
  nodeName: string;
  /** The node a bootstrap token was bound to, if any. */
  boundNode?: string;
  /** Informational only: nothing the node reports grants it a SAN. */
  facts: NodeFacts;
  /** What the control plane knows about the node's serving SANs (required with a serving CSR). */
  sans?: SanContext;
  /** A join carries both CSRs; a renewal carries one or both. */
  client?: ParsedCsr;
  serving?: ParsedCsr;
}

export type Decision = { allowed: true } | { allowed: false; rule: string; reason: string };

interface Rule {
  name: string;
  check(ctx: RequestContext, cfg: PolicyConfig): string | undefined;
}

const bothCsrs = (ctx: RequestContext) =>
  (
    [
      ["client", ctx.client],
      ["serving", ctx.serving],
    ] as const
  ).filter((e): e is readonly ["client" | "serving", ParsedCsr] => e[1] !== undefined);

export const RULES: Rule[] = [
  {
    name: "node-name",
    check: (ctx) => dns1123SubdomainProblem(ctx.nodeName),
  },
  {
    name: "token-binding",
    check: (ctx) =>
      ctx.boundNode !== undefined && ctx.boundNode !== ctx.nodeName
        ? `the bootstrap token is bound to node "${ctx.boundNode}", not "${ctx.nodeName}"`
        : undefined,
  },
  {
    name: "fips-node",
    check: (ctx, cfg) => {
      if (!cfg.requireFipsNodes) return undefined;
      const c = ctx.facts.crypto;
      if (!c) return "this server requires FIPS nodes (requireFipsNodes) and the agent did not report its crypto provider; upgrade the agent and run it with fips: on";
      if (!c.fips || c.selfTest !== "passed") {
        return `this server requires FIPS nodes (requireFipsNodes) and the agent runs on ${c.provider} (FIPS ${c.fips ? "claimed" : "off"}, self-test ${c.selfTest ?? "not reported"}); run the agent with fips: on on a FIPS-capable host`;
      }
      return undefined;
    },
  },
  {
    name: "fips-algorithms",
    check: (ctx, cfg) => {
      if (!cfg.fips) return undefined;
      for (const [kind, csr] of bothCsrs(ctx)) {
        const key = fipsKeyAlgorithmDecision(csr.keyAlgorithm ?? csr.keyDescription);
        if (!key.allowed) return `the ${kind} CSR's key is ${csr.keyDescription}: ${key.reason}`;
        const sig = csr.signatureAlgorithm;
        if (!sig.hash) return `the ${kind} CSR is signed with ${sig.name}: FIPS mode accepts RSA or ECDSA signatures with SHA-256 or SHA-384 only`;
        const hash = fipsSignatureHashDecision(sig.hash);
        if (!hash.allowed) return `the ${kind} CSR is signed with ${sig.name}/${sig.hash}: ${hash.reason}`;
      }
      return undefined;
    },
  },
  {
    name: "csr-signature",
    check: (ctx) => {
      // A key that cannot even be loaded is refused by key-strength, for what it is.
      for (const [kind, csr] of bothCsrs(ctx)) if (!csr.signatureValid && !csr.keyProblem) return `the ${kind} CSR's self-signature does not verify`;
      return undefined;
    },
  },
  {
    name: "subject",
    check: (ctx) => {
      const cn = nodeCommonName(ctx.nodeName);
      for (const [kind, csr] of bothCsrs(ctx)) {
        if (csr.subjectCN.length !== 1 || csr.subjectCN[0] !== cn) {
          return `the ${kind} CSR's CN is [${csr.subjectCN.join(", ")}], it must be "${cn}"`;
        }
        if (csr.subjectO.length !== 1 || csr.subjectO[0] !== NODE_ORG) {
          return `the ${kind} CSR's O is [${csr.subjectO.join(", ")}], it must be exactly "${NODE_ORG}"`;
        }
        const extra = csr.subjectFields.filter((f) => f !== "CN" && f !== "O");
        if (extra.length) return `the ${kind} CSR's subject has fields [${extra.join(", ")}] beyond CN and O`;
      }
      return undefined;
    },
  },
  {
    name: "client-no-sans",
    check: (ctx) => {
      if (!ctx.client) return undefined;
      const s = ctx.client.sans;
      if (s.dns.length || s.ip.length || ctx.client.otherSanTypes.length) {
        return `the client CSR carries SANs (DNS[${s.dns.join(",")}] IP[${s.ip.join(",")}]); a kubelet client certificate has none`;
      }
      return undefined;
    },
  },
  {
    name: "usage",
    check: (ctx) => {
      const c = ctx.client?.extendedKeyUsages ?? [];
      if (c.some((u) => u !== EKU_CLIENT_AUTH)) return `the client CSR asks for extended key usages [${c.join(", ")}]; only clientAuth is allowed`;
      const s = ctx.serving?.extendedKeyUsages ?? [];
      if (s.some((u) => u !== EKU_SERVER_AUTH)) return `the serving CSR asks for extended key usages [${s.join(", ")}]; only serverAuth is allowed`;
      return undefined;
    },
  },
  {
    name: "serving-sans-present",
    check: (ctx) => {
      if (!ctx.serving) return undefined;
      if (ctx.serving.otherSanTypes.length) return `the serving CSR has SAN types [${ctx.serving.otherSanTypes.join(", ")}]; only DNS and IP are signed`;
      if (!ctx.serving.sans.dns.length && !ctx.serving.sans.ip.length) return "the serving CSR has no SANs; it needs the node's addresses and names";
      return undefined;
    },
  },
  ...ALWAYS_REFUSED.map(
    (r): Rule => ({
      name: r.rule,
      check: (ctx, cfg) => {
        for (const [kind, value] of servingSans(ctx)) {
          const reason = kind === "dns" ? r.dns?.(value, cfg) : r.ip?.(value, cfg);
          if (reason) return reason;
        }
        return undefined;
      },
    }),
  ),
  {
    name: OTHER_NODE_RULE,
    check: (ctx, cfg) => {
      for (const [kind, value] of servingSans(ctx)) {
        const holder = ctx.sans?.heldByOthers.get(sanKey(kind, value));
        // Loopback with allowLoopbackSans names only "this host" (see san-policy).
        if (holder && !loopbackExempt(kind, value, cfg)) return otherNodeReason(kind, value, holder);
      }
      return undefined;
    },
  },
  {
    // The node's claims (CSR, facts) never grant a SAN: only what the control plane knows does.
    name: "serving-sans-owned",
    check: (ctx) => {
      if (!ctx.serving) return undefined;
      if (!ctx.sans) return "the control plane could not tell which serving SANs this node may hold";
      for (const [kind, value] of servingSans(ctx)) {
        if (sanSource(ctx.sans.allowed, kind, value)) continue;
        const what = kind === "dns" ? `DNS SAN "${value}"` : `IP SAN ${value}`;
        return (
          `${what} is not one this control plane allows node "${ctx.nodeName}" (it allows ${describeAllowed(ctx.sans.allowed)}): ` +
          `approve it with 'nodecert node approve-san ${ctx.nodeName} ${value}', bind it to the node's token ('nodecert token create --node ${ctx.nodeName} --san ${value}') ` +
          `or grant it in policy.nodeGroups`
        );
      }
      return undefined;
    },
  },
  {
    name: "serving-sans-allowed",
    check: (ctx, cfg) => {
      if (!ctx.serving) return undefined;
      const blocks = cidrList(cfg.allowedCidrs);
      for (const ip of ctx.serving.sans.ip) {
        const family = isIP(ip) === 6 ? "ipv6" : "ipv4";
        if (!blocks.check(ip, family)) return `IP SAN ${ip} is outside the allowed CIDRs (${cfg.allowedCidrs.join(", ")})`;
      }
      const patterns = cfg.allowedDnsPatterns.map((p) => new RegExp(p));
      for (const d of ctx.serving.sans.dns) {
        if (!patterns.some((re) => re.test(d))) return `DNS SAN "${d}" matches none of the allowed patterns (${cfg.allowedDnsPatterns.join(", ")})`;
      }
      return undefined;
    },
  },
  {
    name: "key-strength",
    check: (ctx, cfg) => {
      for (const [kind, csr] of bothCsrs(ctx)) {
        const alg = csr.keyAlgorithm;
        if (csr.keyProblem) return `the ${kind} CSR's key is refused: ${csr.keyProblem}`;
        // With e = 1 any value "verifies", so the CSR proves no private key; small or odd exponents
        // are what no standard key generator makes. Only F4 is accepted, as in the CA/B Baseline profile.
        if (csr.rsaPublicExponent !== undefined && csr.rsaPublicExponent !== RSA_EXPONENT) {
          return `the ${kind} CSR's RSA key has public exponent ${csr.rsaPublicExponent}; only ${RSA_EXPONENT} is accepted`;
        }
        if (csr.keyDescription.startsWith("RSA") && (csr.keyBits ?? 0) < cfg.minRsaBits) {
          return `the ${kind} CSR's key is ${csr.keyDescription}; RSA keys need at least ${cfg.minRsaBits} bits`;
        }
        if (!alg) return `the ${kind} CSR's key is ${csr.keyDescription}, which is not supported (use ECDSA P-256/P-384, RSA ≥ ${cfg.minRsaBits} or Ed25519)`;
        if (!cfg.allowedKeyAlgorithms.includes(alg)) {
          return `the ${kind} CSR's key is ${csr.keyDescription}; this server allows ${cfg.allowedKeyAlgorithms.join(", ")}`;
        }
      }
      return undefined;
    },
  },
];

export function cidrList(cidrs: string[]): BlockList {
  return blockList(cidrs, "policy.allowedCidrs");
}

/** The serving CSR's SANs, DNS and IP kept apart as the CSR had them. */
function servingSans(ctx: RequestContext): [SanKind, string][] {
  if (!ctx.serving) return [];
  return [...ctx.serving.sans.dns.map((d): [SanKind, string] => ["dns", d]), ...ctx.serving.sans.ip.map((i): [SanKind, string] => ["ip", i])];
}

/**
 * Why this policy would deny every CSR with keys of `alg` (not allowed, or not FIPS-approved in
 * FIPS mode): a campaign checks it before pushing the algorithm to the fleet.
 */
export function keyAlgorithmProblem(alg: string, cfg: PolicyConfig): string | undefined {
  if (!(cfg.allowedKeyAlgorithms as string[]).includes(alg)) return `policy.allowedKeyAlgorithms allows only ${cfg.allowedKeyAlgorithms.join(", ")}`;
  if (cfg.fips) {
    const d = fipsKeyAlgorithmDecision(alg);
    if (!d.allowed) return d.reason;
  }
  return undefined;
}

/** Runs every rule in order; the first that objects denies the request. */
export function evaluate(ctx: RequestContext, cfg: PolicyConfig): Decision {
  for (const rule of RULES) {
    const reason = rule.check(ctx, cfg);
    if (reason) return { allowed: false, rule: rule.name, reason };
  }
  return { allowed: true };
}

export function cappedLifetime(requestedMs: number | undefined, maxMs: number): number {
  return requestedMs === undefined ? maxMs : Math.min(requestedMs, maxMs);
}
