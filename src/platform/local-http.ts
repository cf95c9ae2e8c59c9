// The agent's two local HTTP endpoints (the health server on loopback and the control socket)
// run on node:http: three routes each do not need a web framework resident in the daemon.
// These helpers give them the same behaviour a framework would: JSON answers, a body limit
// (413), JSON bodies only (415/400), 404 for unknown routes, 405 for a known route with another
// method, and a handler error answered 500 without taking the process down.
import http, { type IncomingMessage, type ServerResponse } from "node:http";

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface Reply {
  status?: number;
  /** JSON-encoded unless it is a string (then sent as is, with contentType). */
  body: unknown;
  contentType?: string;
}

export type Route = (req: IncomingMessage, body: unknown) => Promise<Reply>;

/** Routes by "METHOD /path"; the query string is ignored. */
export function createLocalServer(routes: Record<string, Route>, o: { bodyLimit: number }): http.Server {
  const paths = new Set(Object.keys(routes).map((k) => k.slice(k.indexOf(" ") + 1)));
  return http.createServer((req, res) => {
    void handle(req, res).catch((e: Error) => send(res, { status: e instanceof HttpError ? e.status : 500, body: { error: e.message } }));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const pathname = (req.url ?? "/").split("?")[0];
    const method = req.method === "HEAD" ? "GET" : (req.method ?? "GET");
    const route = routes[`${method} ${pathname}`];
    if (!route) {
      req.resume();
      const known = paths.has(pathname);
      return send(res, { status: known ? 405 : 404, body: { error: known ? `${req.method} is not allowed on ${pathname}` : `no route ${req.method} ${pathname}` } });
    }
    const body = await readJsonBody(req, o.bodyLimit);
    send(res, await route(req, body));
  }
}

function send(res: ServerResponse, r: Reply): void {
  if (res.headersSent) return void res.end();
  const text = typeof r.body === "string" ? r.body : JSON.stringify(r.body);
  res.writeHead(r.status ?? 200, { "content-type": typeof r.body === "string" ? (r.contentType ?? "text/plain; charset=utf-8") : "application/json; charset=utf-8", "content-length": Buffer.byteLength(text) });
  res.end(res.req.method === "HEAD" ? undefined : text);
}

/** undefined for an empty body; a JSON body up to `limit` bytes; else an HttpError. */
function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > limit) {
    req.resume();
    return Promise.reject(new HttpError(413, `request body of ${declared} bytes is over the ${limit}-byte limit`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.removeAllListeners("data");
        req.resume();
        reject(new HttpError(413, `request body is over the ${limit}-byte limit`));
      } else chunks.push(c);
    });
    req.on("error", reject);
    req.on("end", () => {
      if (size > limit) return;
      if (size === 0) return resolve(undefined);
      const type = String(req.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase();
      if (type !== "application/json") return reject(new HttpError(415, `content-type must be application/json, got "${type || "none"}"`));
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")));
      } catch {
        reject(new HttpError(400, "request body is not valid JSON"));
      }
    });
  });
}

/** Listens on host:port or a unix socket path; resolves once it does. */
export function listen(server: http.Server, where: { host: string; port: number } | { path: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    const done = () => {
      server.off("error", reject);
      resolve();
    };
    if ("path" in where) server.listen(where.path, done);
    else server.listen(where.port, where.host, done);
  });
}

/** Stops accepting, ends idle keep-alive connections, resolves when closed. */
export function close(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}
