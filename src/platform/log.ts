// Structured JSON logging (journald reads stdout) with redaction of secrets.
import winston from "winston";
import type { Writable } from "node:stream";
import { escapeJsonText } from "./text.js";

import { TOKEN_IN_TEXT_RE as TOKEN_RE } from "../protocol/token.js";
const PEM_KEY_RE = /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)/g;
const BEARER_RE = /(bearer\s+)\S+/gi;
const SECRET_FIELD = /^(token|secret|password|passphrase|authorization|privatekey|private_key|key|keypem|kek|cakey)$/i;
export const REDACTED = "[REDACTED]";

export function redactString(s: string): string {
  return s.replace(PEM_KEY_RE, REDACTED).replace(BEARER_RE, `$1${REDACTED}`).replace(TOKEN_RE, REDACTED);
}

export function redact(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return redactString(value);
  if (depth > 8 || value === null || typeof value !== "object") return value;
  if (value instanceof Error) return { name: value.name, message: redactString(value.message) };
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = SECRET_FIELD.test(k) ? REDACTED : redact(v, depth + 1);
  return out;
}

const redactFormat = winston.format((info) => {
  const symbols = Object.getOwnPropertySymbols(info);
  const cleaned = redact({ ...info }) as winston.Logform.TransformableInfo;
  for (const s of symbols) (cleaned as unknown as Record<symbol, unknown>)[s] = (info as unknown as Record<symbol, unknown>)[s];
  return cleaned;
});

// winston's JSON escapes C0 characters but leaves DEL and C1 (0x9b is a CSI) raw; a field a node
// sent must not drive the terminal of whoever reads the journal.
const MESSAGE = Symbol.for("message");
const escapeControls = winston.format((info) => {
  const line = (info as unknown as Record<symbol, unknown>)[MESSAGE];
  if (typeof line === "string") (info as unknown as Record<symbol, unknown>)[MESSAGE] = escapeJsonText(line);
  return info;
});

export type Level = "error" | "warn" | "info" | "debug";
export type Fields = Record<string, unknown>;

/** What nodecert logs through: winston underneath, this narrow face everywhere else. */
export interface Logger {
  error(message: string, fields?: Fields): void;
  warn(message: string, fields?: Fields): void;
  info(message: string, fields?: Fields): void;
  debug(message: string, fields?: Fields): void;
  log(level: Level, message: string, fields?: Fields): void;
  /** The same logger with these fields on every line. */
  child(fields: Fields): Logger;
}

export interface LoggerOptions {
  level?: string;
  stream?: Writable;
  component?: string;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  return wrap(winston.createLogger({
    level: opts.level ?? process.env.NODECERT_LOG_LEVEL ?? "info",
    defaultMeta: opts.component ? { component: opts.component } : undefined,
    format: winston.format.combine(redactFormat(), winston.format.timestamp(), winston.format.json(), escapeControls()),
    transports: [new winston.transports.Stream({ stream: opts.stream ?? process.stdout })],
  }));
}

function wrap(w: winston.Logger): Logger {
  return {
    log: (level, message, fields) => void w.log(level, message, fields),
    error: (m, f) => void w.error(m, f),
    warn: (m, f) => void w.warn(m, f),
    info: (m, f) => void w.info(m, f),
    debug: (m, f) => void w.debug(m, f),
    child: (fields) => wrap(w.child(fields)),
  };
}

/** A logger that drops everything: for tests that do not look at logs. */
export function silentLogger(): Logger {
  const drop = () => undefined;
  const silent: Logger = { log: drop, error: drop, warn: drop, info: drop, debug: drop, child: () => silent };
  return silent;
}
