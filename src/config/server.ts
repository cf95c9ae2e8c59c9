// server.yaml: schema and defaults.
import * as z from "zod";
import { durationMs } from "./duration-schema.js";
import { POLICY_DEFAULTS as DEFAULT_POLICY, DEFAULT_HTTP_LIMITS, DEFAULT_CHANNEL_LIMITS } from "./server-defaults.js";
import { cidrProblem } from "./cidr.js";
import { KEY_ALGORITHMS } from "../pki/key-algorithms.js";
import { FIPS_MODES } from "../crypto/fips-mode.js";

const duration = durationMs;

const cidr = z.string().superRefine((c, ctx) => {
  const p = cidrProblem(c);
  if (p) ctx.addIssue({ code: "custom", message: p });
});

const NodeGroup = z
  .object({
    /** A regular expression matched against the whole node name. */
    nodes: z.string().superRefine((re, ctx) => {
      try {
        new RegExp(re);
      } catch (e) {
        ctx.addIssue({ code: "custom", message: `not a regular expression: ${(e as Error).message}` });
      }
    }),
    /** IP SANs the group's nodes may hold. */
    cidrs: z.array(cidr).default([]),
    /** DNS SANs the group's nodes may hold; "{node}" is replaced by the node name. */
    dnsNames: z.array(z.string().min(1).max(253)).default([]),
  })
  .strict();

/** Where the server keeps its state: an embedded SQLite file (one server) or etcd (replicas, HA). */
const StoreConfig = z
  .discriminatedUnion("kind", [
    z.object({ kind: z.literal("sqlite") }).strict(),
    z
      .object({
        kind: z.literal("etcd"),
        /** etcd client URLs (https://host:2379), every member or a load balancer. */
        endpoints: z.array(z.string().url().refine((u) => u.startsWith("https://"), { message: "etcd endpoints must be https:// (mTLS to etcd, as the apiserver does)" })).min(1),
        /** Key prefix shared by this installation's replicas. */
        prefix: z.string().min(1).refine((p) => p.endsWith("/"), { message: "the prefix must end in / (e.g. /nodecert/)" }).default("/nodecert/"),
        /** PEM files (relative paths: to the server directory): etcd's CA, this replica's client certificate and key. */
        tls: z.object({ ca: z.string().min(1), cert: z.string().min(1), key: z.string().min(1) }).strict(),
        /** How long one etcd request may take before the replica counts etcd as lost. */
        requestTimeout: duration.default(3000),
        /** How often a replica checks that etcd answers (readiness). */
        probeInterval: duration.default(2000),
        /** This replica's name in `nodecert nodes` and in etcd (default: the host name and listen port). */
        replicaName: z.string().min(1).max(128).optional(),
        /** The leader lease: another replica takes over fleet work this long after the leader died. */
        leaderTtl: duration.default(5000),
      })
      .strict(),
  ])
  .default({ kind: "sqlite" });
export type StoreConfig = z.infer<typeof StoreConfig>;

export const ServerConfig = z
  .object({
    listen: z.string().default("0.0.0.0:9443"),
    store: StoreConfig,
    /** Names and addresses for the server's own TLS certificate; a change re-issues it at the next start. */
    sans: z.array(z.string()).default(["localhost", "127.0.0.1", "::1"]),
    /** The URL nodes write into kubelet.conf. */
    apiServerUrl: z.string().url().default("https://127.0.0.1:6443"),
    certificates: z
      .object({
        maxClientLifetime: duration.default(365 * 86_400_000),
        maxServingLifetime: duration.default(365 * 86_400_000),
      })
      .strict()
      .default({ maxClientLifetime: 365 * 86_400_000, maxServingLifetime: 365 * 86_400_000 }),
    policy: z
      .object({
        allowedCidrs: z.array(z.string()).default(DEFAULT_POLICY.allowedCidrs),
        allowedDnsPatterns: z.array(z.string()).default(DEFAULT_POLICY.allowedDnsPatterns),
        minRsaBits: z.number().int().min(2048).default(DEFAULT_POLICY.minRsaBits),
        allowedKeyAlgorithms: z.array(z.enum(KEY_ALGORITHMS)).default(DEFAULT_POLICY.allowedKeyAlgorithms),
        /** No node may hold an IP SAN in the cluster's service CIDRs. */
        serviceCidrs: z.array(cidr).default(DEFAULT_POLICY.serviceCidrs),
        /** Sign loopback SANs (127.0.0.0/8, ::1, localhost): only for tests and one-host setups. */
        allowLoopbackSans: z.boolean().default(false),
        /** Sign link-local IP SANs (169.254.0.0/16, fe80::/10). */
        allowLinkLocalSans: z.boolean().default(false),
        /** Serving SANs granted to nodes by name (see the README's approval policy). */
        nodeGroups: z.array(NodeGroup).default([]),
      })
      .strict()
      .default(DEFAULT_POLICY),
    /**
     * Accept renewal from a client certificate that expired less than this long ago (the node
     * was off). 0 (default) means never: such a node re-joins with a bootstrap token.
     */
    renewAfterExpiry: duration.default(0),
    caRotation: z
      .object({
        /** Advance phases as soon as nothing blocks them; off: the operator runs `nodecert ca advance`. */
        autoAdvance: z.boolean().default(true),
        /** Nodes re-issued at once in the switch phase. */
        maxInFlight: z.number().int().min(1).default(5),
      })
      .strict()
      .default({ autoAdvance: true, maxInFlight: 5 }),
    /** How long issuance and audit records are kept (server/retention.ts). */
    retention: z
      .object({
        /** An issuance record goes this long after its certificate expired (a node's newest stays). */
        certificateGrace: duration.default(30 * 86_400_000),
        /** Audit events go after this long, exported first as JSON lines into auditArchiveDir. */
        audit: duration.default(400 * 86_400_000),
        /** Where pruned audit events are kept (default: <server dir>/audit-archive). */
        auditArchiveDir: z.string().optional(),
        /** How often the pruning runs; 0 turns retention off. */
        interval: duration.default(3_600_000),
      })
      .strict()
      .default({ certificateGrace: 30 * 86_400_000, audit: 400 * 86_400_000, interval: 3_600_000 }),
    tokens: z
      .object({
        maxFailures: z.number().int().positive().default(10),
        failureWindow: duration.default(60_000),
      })
      .strict()
      .default({ maxFailures: 10, failureWindow: 60_000 }),
    /** What one peer may cost the HTTPS listener (timeouts, connections per source). */
    limits: z
      .object({
        headersTimeout: duration.default(DEFAULT_HTTP_LIMITS.headersTimeout),
        requestTimeout: duration.default(DEFAULT_HTTP_LIMITS.requestTimeout),
        idleTimeout: duration.default(DEFAULT_HTTP_LIMITS.idleTimeout),
        maxConnectionsPerSource: z.number().int().min(1).default(DEFAULT_HTTP_LIMITS.maxConnectionsPerSource),
        ipv6SourcePrefix: z.number().int().min(1).max(128).default(DEFAULT_HTTP_LIMITS.ipv6SourcePrefix),
      })
      .strict()
      .refine((l) => l.headersTimeout > 0 && l.requestTimeout > 0 && l.idleTimeout > 0, { message: "timeouts must be positive (0 would mean never)" })
      .refine((l) => l.headersTimeout <= l.requestTimeout, { message: "headersTimeout cannot be longer than requestTimeout" })
      .default(DEFAULT_HTTP_LIMITS),
    /** What one agent may cost the fleet channel. */
    channel: z
      .object({
        /** Messages per second an agent may send, sustained (a token bucket per connection). */
        messageRate: z.number().positive().default(DEFAULT_CHANNEL_LIMITS.messageRate),
        /** Messages an agent may send in a burst. */
        messageBurst: z.number().int().min(1).default(DEFAULT_CHANNEL_LIMITS.messageBurst),
        /** A peer whose unsent data exceeds this is not reading: it is disconnected. */
        maxBufferedBytes: z.number().int().min(65_536).default(DEFAULT_CHANNEL_LIMITS.maxBufferedBytes),
      })
      .strict()
      .default(DEFAULT_CHANNEL_LIMITS),
    /**
     * Prometheus /metrics on a plain-HTTP listener of its own, loopback by default (it is not on
     * the mTLS API port). enabled: false turns it off.
     */
    metrics: z
      .object({ enabled: z.boolean().default(true), listen: z.string().default("127.0.0.1:9444") })
      .strict()
      .default({ enabled: true, listen: "127.0.0.1:9444" }),
    /** Crypto provider: auto (FIPS on a FIPS host or with fipsProviderDir), on (FIPS or refuse to start), off. */
    fips: z.enum(FIPS_MODES).default("auto"),
    /** Directory holding the OpenSSL FIPS provider (fips.so and its fipsmodule.cnf). */
    fipsProviderDir: z.string().min(1).optional(),
    /** Refuse joins and renewals from agents that do not run on a self-tested FIPS provider. */
    requireFipsNodes: z.boolean().default(false),
  })
  .strict();
export type ServerConfig = z.infer<typeof ServerConfig>;

export { parseListen } from "./listen.js";
