// Admin API bodies (mTLS with the admin certificate). No I/O.
import * as z from "zod";
import { KEY_ALGORITHMS } from "../pki/key-algorithms.js";

export const EvictRequest = z.object({ reason: z.string().max(512).default("evicted by an administrator") }).strict();

export const CampaignRequest = z
  .object({
    nodes: z.array(z.string().min(1).max(253)).max(100_000).optional(),
    all: z.boolean().default(false),
    maxInFlight: z.number().int().min(1).max(10_000).default(5),
    which: z.array(z.enum(["client", "serving"])).min(1).default(["client", "serving"]),
    keyAlgorithm: z.enum(KEY_ALGORITHMS).optional(),
    reason: z.string().max(512).default("rotation requested by an administrator"),
  })
  .strict()
  .refine((r) => r.all !== Boolean(r.nodes?.length), { message: "give either nodes or all, not both and not neither" });

export const CaRotateRequest = z
  .object({ caCertPem: z.string().max(64 * 1024).optional(), caKeyPem: z.string().max(64 * 1024).optional() })
  .strict()
  .refine((r) => !r.caCertPem === !r.caKeyPem, { message: "caCertPem and caKeyPem go together" });

export const CaAdvanceRequest = z.object({ force: z.boolean().default(false) }).strict();

export interface NodeView {
  name: string;
  connected: boolean;
  /** Replicas (etcd store): the replica the agent's channel is open on. */
  replica?: string;
  evicted: boolean;
  lastSeen: string;
  lastHello?: string;
  agentVersion?: string;
  fips?: boolean;
  cryptoProvider?: string;
  addresses: string[];
  certificates: { kind: string; serial: string; notAfter: string; keyAlgorithm: string }[];
}

/** Operator approvals of serving SANs for one node: names, IPs, and CIDRs (a value with a "/"). */
export const SanApprovalRequest = z.object({ sans: z.array(z.string().min(1).max(253)).min(1).max(64) }).strict();

/** One serving SAN a node may hold, and where that permission comes from. */
export interface AllowedSanView {
  kind: "dns" | "ip" | "cidr";
  value: string;
  /** "node-name", "join-address", "operator", "token:<id>", "policy.nodeGroups[<i>]". */
  source: string;
  /** Operator approvals and token bindings: when they were recorded. */
  createdAt?: string;
}

export interface NodeSansView {
  node: string;
  allowed: AllowedSanView[];
  /** SANs of the node's live (unexpired) serving certificates. */
  held: { dns: string[]; ip: string[] };
}
