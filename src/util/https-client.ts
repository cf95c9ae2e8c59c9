// A small JSON-over-HTTPS client pinned to TLS 1.3, with timeouts and a response size limit.
import https from "node:https";
import { processTlsOptions } from "../crypto/process.js";

export interface ClientTls {
  /** Trust anchors; omitted only with `insecure` (the CA fetch that is checked by pin). */
  ca?: string;
  insecure?: boolean;
  cert?: string;
  key?: string;
  servername?: string;
}

export interface JsonResponse {
  status: number;
  body: unknown;
}

export class RequestFailed extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

export function requestJson(
  url: string,
  o: { method?: string; body?: unknown; rawBody?: string | Buffer; headers?: Record<string, string>; tls: ClientTls; timeoutMs?: number; maxBytes?: number },
): Promise<JsonResponse> {
  const u = new URL(url);
  if (u.protocol !== "https:") return Promise.reject(new RequestFailed(`${url}: only https:// URLs are allowed`));
  const payload = o.rawBody ?? (o.body === undefined ? undefined : JSON.stringify(o.body));
  const maxBytes = o.maxBytes ?? 1024 * 1024;
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        method: o.method ?? (payload ? "POST" : "GET"),
        hostname: u.hostname.replace(/^\[|\]$/g, ""),
        port: u.port || 443,
        path: u.pathname + u.search,
        headers: { accept: "application/json", ...(payload ? { "content-type": "application/json" } : {}), ...(o.headers ?? {}) },
        ca: o.tls.ca,
        cert: o.tls.cert,
        key: o.tls.key,
        servername: o.tls.servername,
        rejectUnauthorized: !o.tls.insecure,
        minVersion: "TLSv1.3",
        maxVersion: "TLSv1.3",
        ...processTlsOptions(),
        agent: false,
        timeout: o.timeoutMs ?? 15_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > maxBytes) {
            req.destroy(new RequestFailed(`${url}: response larger than ${maxBytes} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let body: unknown = text;
          try {
            body = text ? JSON.parse(text) : undefined;
          } catch {
            /* keep text */
          }
          resolve({ status: res.statusCode ?? 0, body });
        });
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new RequestFailed(`${url}: no answer within ${o.timeoutMs ?? 15_000} ms`, "ETIMEDOUT")));
    req.on("error", (e: NodeJS.ErrnoException) => {
      if (e instanceof RequestFailed) return reject(e);
      reject(new RequestFailed(`cannot reach ${u.origin}: ${e.code ?? ""} ${e.message}`.replace(/\s+/g, " ").trim(), e.code));
    });
    if (payload) req.write(payload);
    req.end();
  });
}

/** Turns a server error body into one line. */
export function describeErrorBody(status: number, body: unknown): string {
  if (body && typeof body === "object" && "reason" in body) {
    const b = body as { error?: string; rule?: string; reason?: string };
    return `HTTP ${status} ${b.error ?? ""}${b.rule ? ` (rule ${b.rule})` : ""}: ${b.reason}`;
  }
  return `HTTP ${status}: ${typeof body === "string" ? body.slice(0, 200) : JSON.stringify(body)?.slice(0, 200)}`;
}
