// A small JSON-over-HTTPS client pinned to TLS 1.3, with timeouts and a response size limit.
import https from "node:https";
import { checkServerIdentity, type PeerCertificate } from "node:tls";
import { processTlsOptions } from "../crypto/process.js";
import { EKU_NODECERT_CONTROL_PLANE } from "../pki/certificate-info.js";

export const NOT_CONTROL_PLANE = "ERR_NODECERT_NOT_CONTROL_PLANE";

/**
 * checkServerIdentity for talking to the control plane: the usual host name check, and the leaf
 * must carry nodecert's control-plane extended key usage. Being signed by the cluster CA is not
 * enough: every node holds such a certificate for its own address. Runs inside the TLS handshake,
 * so nothing (no token, no request) is sent to a server that fails it.
 */
export function controlPlaneIdentityCheck(host: string, cert: PeerCertificate): Error | undefined {
  const hostError = checkServerIdentity(host, cert);
  if (hostError) return hostError;
  const ekus = (cert as PeerCertificate & { ext_key_usage?: string[] }).ext_key_usage ?? [];
  if (ekus.includes(EKU_NODECERT_CONTROL_PLANE)) return undefined;
  const subject = cert.subject?.CN ?? JSON.stringify(cert.subject);
  const err = new Error(
    `the server's certificate ("${subject}", issued by "${cert.issuer?.CN ?? "?"}") is not a nodecert control-plane certificate: ` +
      `it lacks the control-plane extended key usage ${EKU_NODECERT_CONTROL_PLANE}, so it may be a node's certificate standing in at the control plane's address; refusing to talk to it. ` +
      `If this is your control plane, upgrade it: 'nodecert server run' re-issues its certificate with that usage at start`,
  ) as NodeJS.ErrnoException;
  err.code = NOT_CONTROL_PLANE;
  return err;
}

export interface ClientTls {
  /** Trust anchors; omitted only with `insecure` (the CA fetch that is checked by pin). */
  ca?: string;
  insecure?: boolean;
  cert?: string;
  key?: string;
  servername?: string;
  /** The peer must be the nodecert control plane (its certificate's control-plane EKU). */
  controlPlane?: boolean;
}

export interface JsonResponse {
  status: number;
  body: unknown;
  /** The response's Date header: the peer's clock, to the second. */
  date?: string;
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
  o: { method?: string; localAddress?: string; body?: unknown; rawBody?: string | Buffer; headers?: Record<string, string>; tls: ClientTls; timeoutMs?: number; maxBytes?: number; /** The body as received (a relay passes it on without parsing it). */ textBody?: boolean },
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
        ...(o.tls.controlPlane ? { checkServerIdentity: controlPlaneIdentityCheck } : {}),
        minVersion: "TLSv1.3",
        maxVersion: "TLSv1.3",
        ...processTlsOptions(),
        agent: false,
        localAddress: o.localAddress,
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
          if (o.textBody) return resolve({ status: res.statusCode ?? 0, body: text });
          let body: unknown = text;
          try {
            body = text ? JSON.parse(text) : undefined;
          } catch {
            /* keep text */
          }
          resolve({ status: res.statusCode ?? 0, body, date: res.headers.date });
        });
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new RequestFailed(`${url}: no answer within ${o.timeoutMs ?? 15_000} ms`, "ETIMEDOUT")));
    req.on("error", (e: NodeJS.ErrnoException) => {
      if (e instanceof RequestFailed) return reject(e);
      if (e.code === NOT_CONTROL_PLANE) return reject(new RequestFailed(`${u.origin}: ${e.message}`, e.code));
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
