// Structured logging: one JSON object per line on stdout (journald reads it), keys in sorted
// order, secrets redacted from every value. The same lines winston's json format wrote (level,
// message, timestamp, component and the fields given, sorted), without winston: it and its
// dependencies were ~345 KB of the ~1.2 MB of JavaScript an idle agent loads (docs/BENCHMARKS.md).
import type { Writable } from "node:stream";

const TOKEN_RE = /\b[a-z0-9]{6}\.[a-z0-9]{16}\b/g;
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

/** npm's levels, as winston had them: a logger at "info" writes error, warn and info. */
const LEVELS: Record<string, number> = { error: 0, warn: 1, info: 2, http: 3, verbose: 4, debug: 5, silly: 6 };
export type Level = "error" | "warn" | "info" | "debug";
export type Fields = Record<string, unknown>;

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

/** JSON with object keys sorted (stable lines to read and grep), cycles and BigInts made safe. */
export function stableJson(value: unknown): string {
  const seen = new Set<object>();
  const walk = (v: unknown): unknown => {
    if (typeof v === "bigint") return v.toString();
    if (v === null || typeof v !== "object") return v;
    if (typeof (v as { toJSON?: unknown }).toJSON === "function") return walk((v as { toJSON(): unknown }).toJSON());
    if (seen.has(v)) return "[Circular]";
    seen.add(v);
    const out = Array.isArray(v) ? v.map(walk) : Object.fromEntries(Object.keys(v).sort().map((k) => [k, walk((v as Record<string, unknown>)[k])]));
    seen.delete(v);
    return out;
  };
  return JSON.stringify(walk(value));
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const wanted = opts.level ?? process.env.NODECERT_LOG_LEVEL ?? "info";
  return lineLogger(LEVELS[wanted] ?? LEVELS.info, opts.stream ?? process.stdout, opts.component ? { component: opts.component } : {});
}

function lineLogger(max: number, stream: Writable, base: Fields): Logger {
  const log = (level: Level, message: string, fields?: Fields) => {
    if (LEVELS[level] > max) return;
    const line = { ...base, ...(redact(fields ?? {}) as Fields), level, message: redactString(String(message)), timestamp: new Date().toISOString() };
    stream.write(stableJson(line) + "\n");
  };
  return {
    log,
    error: (m, f) => log("error", m, f),
    warn: (m, f) => log("warn", m, f),
    info: (m, f) => log("info", m, f),
    debug: (m, f) => log("debug", m, f),
    child: (fields) => lineLogger(max, stream, { ...base, ...fields }),
  };
}

/** A logger that drops everything: for tests that do not look at logs. */
export function silentLogger(): Logger {
  const drop = () => undefined;
  const silent: Logger = { log: drop, error: drop, warn: drop, info: drop, debug: drop, child: () => silent };
  return silent;
}
