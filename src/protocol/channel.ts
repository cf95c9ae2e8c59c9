// Messages on the agent ⇄ server WebSocket: versioned JSON envelopes {v, id, type, ...},
// validated by schema on both sides. No I/O.
import * as z from "zod";
import { KEY_ALGORITHMS } from "../pki/key-algorithms.js";
import { CryptoSummary, IpAddress, printable } from "./messages.js";

/** Where the server accepts the channel (WebSocket upgrade). */
export const CHANNEL_PATH = "/v1/agents/ws";
export const CHANNEL_VERSION = 1;
/** Larger frames close the connection with a policy violation. */
export const MAX_FRAME_BYTES = 64 * 1024;
export const CLOSE_POLICY_VIOLATION = 1008;
export const CLOSE_NORMAL = 1000;
export const CLOSE_GOING_AWAY = 1001;
/** Custom code: the node was evicted and must not reconnect. */
export const CLOSE_EVICTED = 4001;

const envelope = { v: z.literal(CHANNEL_VERSION), id: z.string().min(1).max(64) };
const kind = z.enum(["client", "serving"]);

export const CertificateReport = z
  .object({ kind, serial: printable(64), notAfter: printable(40), keyAlgorithm: printable(32), issuer: z.string().max(256).optional() })
  .strict();
export type CertificateReport = z.infer<typeof CertificateReport>;


// Agent → server
export const Hello = z
  .object({
    ...envelope,
    type: z.literal("hello"),
    /** Informational only: identity always comes from the client certificate. */
    nodeName: z.string().max(253).optional(),
    agentVersion: printable(64),
    certificates: z.array(CertificateReport).max(4),
    crypto: CryptoSummary,
    addresses: z.array(IpAddress).max(128),
    /** SHA-256 of the installed ca.crt, so the server knows whether to push a bundle. */
    trustBundleSha256: z.string().max(64).optional(),
  })
  .strict();
export const Status = z
  .object({ ...envelope, type: z.literal("status"), certificates: z.array(CertificateReport).max(4), trustBundleSha256: z.string().max(64).optional() })
  .strict();
export const Ack = z
  .object({
    ...envelope,
    type: z.literal("ack"),
    commandId: z.string().min(1).max(64),
    result: z.enum(["ok", "error"]),
    serials: z.object({ client: z.string().max(64).optional(), serving: z.string().max(64).optional() }).strict().optional(),
    error: z.string().max(2048).optional(),
  })
  .strict();
export const AgentMessage = z.discriminatedUnion("type", [Hello, Status, Ack]);
export type AgentMessage = z.infer<typeof AgentMessage>;
export type Hello = z.infer<typeof Hello>;
export type Ack = z.infer<typeof Ack>;

// Server → agent
export const Rotate = z
  .object({ ...envelope, type: z.literal("rotate"), which: z.array(kind).min(1).max(2), reason: z.string().max(512), keyAlgorithm: z.enum(KEY_ALGORITHMS).optional() })
  .strict();
export const TrustBundle = z
  .object({
    ...envelope,
    type: z.literal("trust-bundle"),
    bundle: z.string().max(48 * 1024),
    /**
     * Cross-certificates: each has the subject and key of a CA in `bundle` and is signed by a CA
     * the node already trusts. An agent adds a CA to its trust only with such a voucher.
     */
    vouchers: z.array(z.string().max(8 * 1024)).max(8).optional(),
  })
  .strict();
export const Evict = z.object({ ...envelope, type: z.literal("evict"), reason: z.string().max(512) }).strict();
export const ServerMessage = z.discriminatedUnion("type", [Rotate, TrustBundle, Evict]);
export type ServerMessage = z.infer<typeof ServerMessage>;
export type Rotate = z.infer<typeof Rotate>;

export type Parsed<T> = { ok: true; message: T } | { ok: false; reason: string };

/** Size, JSON and schema checks in one place, so both sides refuse the same things. */
export function parseFrame<T>(schema: z.ZodType<T>, data: Buffer | string): Parsed<T> {
  const size = typeof data === "string" ? Buffer.byteLength(data) : data.length;
  if (size > MAX_FRAME_BYTES) return { ok: false, reason: `frame of ${size} bytes exceeds ${MAX_FRAME_BYTES}` };
  let json: unknown;
  try {
    json = JSON.parse(data.toString());
  } catch {
    return { ok: false, reason: "frame is not valid JSON" };
  }
  const r = schema.safeParse(json);
  if (!r.success) {
    const t = (json as { type?: unknown })?.type;
    const what = typeof t === "string" ? `"${t}" message` : "message";
    return { ok: false, reason: `invalid ${what}: ${r.error.issues.map((i) => `${i.path.join(".") || "message"}: ${i.message}`).join("; ")}` };
  }
  return { ok: true, message: r.data };
}

/** RFC 6455 allows 123 bytes of close reason (125 minus the code); ws throws on more. */
export const MAX_CLOSE_REASON_BYTES = 123;

/**
 * A close reason that fits: cut by UTF-8 bytes at a character boundary, with "…" when cut. Cutting
 * by characters let multi-byte text overflow the limit, so close() threw and the peer stayed up.
 */
export function closeReason(text: string): string {
  if (Buffer.byteLength(text) <= MAX_CLOSE_REASON_BYTES) return text;
  const room = MAX_CLOSE_REASON_BYTES - Buffer.byteLength("…");
  let out = "";
  let bytes = 0;
  for (const ch of text) {
    const b = Buffer.byteLength(ch);
    if (bytes + b > room) break;
    out += ch;
    bytes += b;
  }
  return out + "…";
}
