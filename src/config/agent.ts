// agent.yaml: schema and defaults.
import * as z from "zod";
import { KEY_ALGORITHMS } from "../pki/key-algorithms.js";
import { durationMs } from "./duration-schema.js";
import { FIPS_MODES } from "../crypto/fips-mode.js";

const hookCommon = {
  /** Which certificate installs trigger the hook. */
  on: z.array(z.enum(["client", "serving"])).default(["client", "serving"]),
  timeout: durationMs.default(30_000),
};

export const Hook = z.discriminatedUnion("type", [
  /** systemctl restart <unit>; skipped (not failed) when ifExists and the unit is not installed. */
  z.object({ type: z.literal("systemd"), unit: z.string().min(1), ifExists: z.boolean().default(true), ...hookCommon }).strict(),
  /** Sends a signal to the pid in pidFile. */
  z.object({ type: z.literal("signal"), pidFile: z.string().min(1), signal: z.string().default("SIGHUP"), ...hookCommon }).strict(),
  /** Runs argv directly (no shell). */
  z.object({ type: z.literal("exec"), argv: z.array(z.string()).min(1), ...hookCommon }).strict(),
]);
export type Hook = z.infer<typeof Hook>;

export const DEFAULT_HOOKS: z.input<typeof Hook>[] = [{ type: "systemd", unit: "kubelet", ifExists: true }];

export const AgentConfig = z
  .object({
    /** Every path the agent writes lives under this root. */
    root: z.string().default("/"),
    /** The agent's own state (default <root>/var/lib/nodecert); a snap points it into $SNAP_COMMON. */
    stateDir: z.string().optional(),
    /** The control plane: one URL, or a list (replicas) tried in turn when one does not answer. */
    server: z.union([z.string().url(), z.array(z.string().url()).min(1).max(16)]).optional(),
    caCertHash: z.string().optional(),
    /** File holding a bootstrap token; used to join (or re-join after expiry) when present. */
    tokenFile: z.string().optional(),
    nodeName: z.string().optional(),
    keyAlgorithm: z.enum(KEY_ALGORITHMS).default("ECDSA-P256"),
    addresses: z
      .object({
        /**
         * connection (default): the local address of the connection to the control plane, which
         * is what the control plane signs without an approval; interfaces: every interface address.
         */
        source: z.enum(["connection", "interfaces"]).default("connection"),
        /** Interfaces only: also loopback / link-local addresses. */
        includeLoopback: z.boolean().default(false),
        includeLinkLocal: z.boolean().default(false),
        /** Extra IPs or names to put in the serving certificate. */
        extra: z.array(z.string()).default([]),
        /** When set, only these addresses are used (the interfaces are not read). */
        only: z.array(z.string()).optional(),
      })
      .strict()
      .default({ source: "connection", includeLoopback: false, includeLinkLocal: false, extra: [] }),
    /** Local HTTP endpoint for /healthz, /readyz and /metrics. */
    healthListen: z.string().default("127.0.0.1:10258"),
    /** When every certificate is re-evaluated (node-cron syntax; 6 fields for seconds). */
    schedule: z.string().default("* * * * *"),
    /** Renew this long before expiry instead of at the drawn 70–90 % deadline. */
    renewBefore: durationMs.optional(),
    /** Generate a fresh key for every renewal (default) or keep the current one. */
    reuseKey: z.boolean().default(false),
    backoff: z
      .object({ initial: durationMs.default(2000), max: durationMs.default(300_000) })
      .strict()
      .default({ initial: 2000, max: 300_000 }),
    /** Timestamped certificate files kept per kind, the current one included. */
    keepFiles: z.number().int().min(1).default(3),
    /** Not ready when the client certificate expires within this window and renewals are failing. */
    dangerWindow: durationMs.default(86_400_000),
    hooks: z.array(Hook).default(DEFAULT_HOOKS as never),
    /** The WebSocket to the control plane for pushed rotations and trust bundles. */
    channel: z
      .object({
        enabled: z.boolean().default(true),
        heartbeat: durationMs.default(30_000),
        reconnectInitial: durationMs.default(1000),
        reconnectMax: durationMs.default(60_000),
      })
      .strict()
      .default({ enabled: true, heartbeat: 30_000, reconnectInitial: 1000, reconnectMax: 60_000 }),
    /**
     * Verified apply (off when absent): after installing a serving certificate, check on
     * servingAddress that the kubelet serves it; restart it with restartHook once if it still
     * serves the old one after `wait`.
     */
    kubelet: z
      .object({
        servingAddress: z.string().regex(/^\[?[^\]]*\]?:\d+$/, "use host:port, e.g. 127.0.0.1:10250"),
        wait: durationMs.default(90_000),
        pollInterval: durationMs.default(5000),
        restartHook: Hook.default({ type: "systemd", unit: "kubelet", ifExists: false, on: ["client", "serving"], timeout: 30_000 }),
      })
      .strict()
      .optional(),
    /** Unix socket for `nodecert renew` (default: <root>/var/lib/nodecert/control.sock). */
    controlSocket: z.string().optional(),
    /** Crypto provider: auto (FIPS on a FIPS host or with fipsProviderDir), on (FIPS or refuse to start), off. */
    fips: z.enum(FIPS_MODES).default("auto"),
    /** Directory holding the OpenSSL FIPS provider (fips.so and its fipsmodule.cnf). */
    fipsProviderDir: z.string().min(1).optional(),
  })
  .strict();
export type AgentConfig = z.infer<typeof AgentConfig>;
