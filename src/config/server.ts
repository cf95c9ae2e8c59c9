// server.yaml: schema and defaults.
import * as z from "zod";
import { durationMs } from "./duration-schema.js";
import { DEFAULT_POLICY } from "../server/policy.js";
import { KEY_ALGORITHMS } from "../pki/key-algorithms.js";
import { FIPS_MODES } from "../crypto/fips-mode.js";

const duration = durationMs;

export const ServerConfig = z
  .object({
    listen: z.string().default("0.0.0.0:9443"),
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
    tokens: z
      .object({
        maxFailures: z.number().int().positive().default(10),
        failureWindow: duration.default(60_000),
      })
      .strict()
      .default({ maxFailures: 10, failureWindow: 60_000 }),
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
