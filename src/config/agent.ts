// agent.yaml: schema and defaults.
import { z } from "zod";
import { KEY_ALGORITHMS } from "../pki/keys.js";

export const AgentConfig = z
  .object({
    /** Every path the agent writes lives under this root. */
    root: z.string().default("/"),
    server: z.string().url().optional(),
    caCertHash: z.string().optional(),
    /** File holding a bootstrap token; used to join when the node has no certificates. */
    tokenFile: z.string().optional(),
    nodeName: z.string().optional(),
    keyAlgorithm: z.enum(KEY_ALGORITHMS).default("ECDSA-P256"),
    addresses: z
      .object({
        includeLoopback: z.boolean().default(false),
        includeLinkLocal: z.boolean().default(false),
        /** Extra IPs or names to put in the serving certificate. */
        extra: z.array(z.string()).default([]),
        /** When set, only these addresses are used (the interfaces are not read). */
        only: z.array(z.string()).optional(),
      })
      .strict()
      .default({ includeLoopback: false, includeLinkLocal: false, extra: [] }),
    /** Local HTTP endpoint for /healthz. */
    healthListen: z.string().default("127.0.0.1:10258"),
  })
  .strict();
export type AgentConfig = z.infer<typeof AgentConfig>;
