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

/** When the agent's renewal window for a certificate opens and closes (70 % and 90 % of its life, client-go's rule). */
export const RENEW_WINDOW = { opens: 0.7, closes: 0.9 } as const;

/** A live certificate of a node as the fleet view shows it. */
export interface FleetCertificateView {
  kind: string;
  serial: string;
  notAfter: string;
  keyAlgorithm: string;
  /** From the issuance record (absent for a certificate this server has no record of). */
  notBefore?: string;
  /** The agent renews at a point drawn in [renewFrom, renewBy] (or earlier with renewBefore). */
  renewFrom?: string;
  renewBy?: string;
  issuer?: string;
}

/**
 * GET /v1/admin/fleet: every node with what an operator needs at a glance. `failing` says why the
 * node's renewals look stuck: its last renewal was denied, or a certificate is past its renewal window.
 */
export interface FleetNodeView extends Omit<NodeView, "certificates"> {
  certificates: FleetCertificateView[];
  /** The earliest point any of its certificates' renewal windows open. */
  nextRenewal?: string;
  failing?: string;
}

export interface FleetView {
  now: string;
  nodes: FleetNodeView[];
}

/** GET /v1/admin/audit query: every field narrows the result; times are ISO 8601. */
export const AuditQuery = z
  .object({
    node: z.string().max(253).optional(),
    rule: z.string().max(128).optional(),
    type: z.string().max(64).optional(),
    since: z.iso.datetime({ offset: true }).optional(),
    until: z.iso.datetime({ offset: true }).optional(),
    limit: z.coerce.number().int().min(1).max(10_000).default(500),
  })
  .strict();

export interface AuditEventView {
  time: string;
  type: string;
  node?: string;
  source?: string;
  rule?: string;
  reason?: string;
  detail?: Record<string, unknown>;
}

/** GET /v1/admin/nodes/:name: one node in full. */
export interface NodeDetailView extends FleetNodeView {
  firstSeen: string;
  joinAddress?: string;
  confirmedSerial?: string;
  evictedAt?: string;
  facts: Record<string, unknown>;
  trustBundleSha256?: string;
  /** SANs of its live (unexpired) serving certificates. */
  servingSans: { dns: string[]; ip: string[] };
  /** Every certificate this server issued to the node, newest first. */
  issued: { serial: string; kind: string; subject: string; notBefore: string; notAfter: string; issuedAt: string; issuerFingerprint?: string; fingerprint256: string; sans?: { dns: string[]; ip: string[] } }[];
  campaigns: { id: string; state: string; attempts: number; lastError?: string; startedAt?: string; finishedAt?: string }[];
  history: AuditEventView[];
}

export const CampaignCancelRequest = z.object({ reason: z.string().max(512).default("cancelled by an administrator") }).strict();
