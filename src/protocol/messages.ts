// Wire messages between agent and server, validated by schema on both sides. No I/O.
import { isIP } from "node:net";
import * as z from "zod";

export const PROTOCOL_VERSION = 1;
export const MAX_BODY_BYTES = 64 * 1024;

const pem = (label: string) =>
  z
    .string()
    .max(32 * 1024)
    .refine((s) => s.includes(`-----BEGIN ${label}-----`), { message: `must be a PEM ${label}` });

/**
 * Printable ASCII only: an agent's version string ends up in operators' tables, where a control
 * character could drive their terminal. A hostile agent gets a schema refusal.
 */
export const printable = (max: number) => z.string().max(max).regex(/^[\x20-\x7e]*$/, { message: "must be printable ASCII (no control characters)" });

/** The crypto provider a process runs on; `fips` is true only after a passing FIPS self-test. */
export const CryptoSummary = z.object({ provider: z.string().max(128), fips: z.boolean(), selfTest: z.enum(["passed", "failed", "not-run"]).optional() }).strict();
export type CryptoSummary = z.infer<typeof CryptoSummary>;

/**
 * An IP address literal as it can appear in a certificate: no zone id ("fe80::1%eth0" names an
 * interface on the node, not an address anyone else can reach or a SAN can hold).
 */
export const IpAddress = z
  .string()
  .max(64)
  .refine((s) => !s.includes("%") && isIP(s) !== 0, { message: "must be an IPv4 or IPv6 address literal without a zone id (such as %eth0)" });

export const NodeFacts = z
  .object({
    hostname: z.string().min(1).max(253),
    fqdn: z.string().max(253).optional(),
    machineId: z.string().max(128).optional(),
    /** DNS names the node answers to, for its serving certificate. */
    names: z.array(z.string().max(253)).max(32).optional(),
    addresses: z.array(IpAddress).max(128),
    os: z
      .object({ platform: z.string().max(64), distro: z.string().max(128).optional(), release: z.string().max(128).optional(), kernel: z.string().max(128).optional(), arch: z.string().max(32).optional() })
      .optional(),
    agentVersion: printable(64),
    /** The agent's crypto provider (a server with requireFipsNodes refuses non-FIPS agents). */
    crypto: CryptoSummary.optional(),
  })
  .strict();
export type NodeFacts = z.infer<typeof NodeFacts>;

export const JoinRequest = z
  .object({
    v: z.literal(PROTOCOL_VERSION),
    nodeName: z.string().min(1).max(253),
    facts: NodeFacts,
    csrs: z.object({ client: pem("CERTIFICATE REQUEST"), serving: pem("CERTIFICATE REQUEST") }).strict(),
  })
  .strict();
export type JoinRequest = z.infer<typeof JoinRequest>;

export const IssuedCertificates = z
  .object({
    /** Leaf first, then intermediates. */
    client: pem("CERTIFICATE"),
    serving: pem("CERTIFICATE"),
  })
  .strict();

export const JoinResponse = z
  .object({
    v: z.literal(PROTOCOL_VERSION),
    nodeName: z.string(),
    certificates: IssuedCertificates,
    caBundle: pem("CERTIFICATE"),
    apiServer: z.string().url(),
  })
  .strict();
export type JoinResponse = z.infer<typeof JoinResponse>;

export const RenewRequest = z
  .object({
    v: z.literal(PROTOCOL_VERSION),
    facts: NodeFacts,
    csrs: z
      .object({ client: pem("CERTIFICATE REQUEST").optional(), serving: pem("CERTIFICATE REQUEST").optional() })
      .strict()
      .refine((c) => c.client || c.serving, { message: "at least one of client and serving is required" }),
  })
  .strict();
export type RenewRequest = z.infer<typeof RenewRequest>;

export const RenewResponse = z
  .object({
    v: z.literal(PROTOCOL_VERSION),
    nodeName: z.string(),
    certificates: z.object({ client: pem("CERTIFICATE").optional(), serving: pem("CERTIFICATE").optional() }).strict(),
    caBundle: pem("CERTIFICATE"),
  })
  .strict();
export type RenewResponse = z.infer<typeof RenewResponse>;

export const CaBundleResponse = z.object({ v: z.literal(PROTOCOL_VERSION), caBundle: pem("CERTIFICATE") }).strict();
export type CaBundleResponse = z.infer<typeof CaBundleResponse>;

export const TokenCreateRequest = z
  .object({
    ttlSeconds: z.number().int().positive().max(365 * 86400),
    node: z.string().min(1).max(253).optional(),
    uses: z.number().int().positive().max(10_000).default(1),
    description: z.string().max(256).optional(),
    /** Serving SANs (DNS names or IPs) the node joining with this token may hold; needs `node`. */
    sans: z.array(z.string().min(1).max(253)).max(64).optional(),
    /** CIDRs whose addresses the node joining with this token may hold as IP SANs; needs `node`. */
    cidrs: z.array(z.string().min(1).max(64)).max(64).optional(),
  })
  .strict()
  .refine((t) => t.node !== undefined || (!t.sans?.length && !t.cidrs?.length), { message: "sans and cidrs bind serving SANs to one node: give node as well", path: ["node"] });
export type TokenCreateRequest = z.infer<typeof TokenCreateRequest>;

export const TokenCreateResponse = z.object({ token: z.string(), id: z.string(), expiresAt: z.string() }).strict();

/** Every non-2xx answer: a machine-readable code, the policy rule when one denied, and a reason for humans. */
export const ErrorBody = z.object({ error: z.string(), reason: z.string(), rule: z.string().optional() });
export type ErrorBody = z.infer<typeof ErrorBody>;

/** Joins a zod error into one line a human can act on. */
export function describeZodError(e: z.ZodError): string {
  return e.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ");
}
