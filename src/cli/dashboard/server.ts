// The fleet dashboard's local web server (like `kubectl proxy`): serves the bundled page and
// relays its reads and actions to the control plane's admin API, with the admin certificate the
// operator already holds. It adds no authentication surface to the control plane; locally it
// guards what another user of the machine or a web page in the operator's browser could reach:
//  - loopback only, and the Host header must name this listener (a DNS-rebound name is refused);
//  - every request needs the session cookie, which only the per-run URL token printed at start
//    (or the single-use token handed to --open) can get: HttpOnly, SameSite=Strict;
//  - an Origin or Sec-Fetch-Site from another site is refused;
//  - actions are POST only, JSON, with the session's CSRF token in a header;
//  - a Content-Security-Policy that allows only this origin's own script and style.
// The page can do only what the admin API offers the CLI: every action is one admin request.
import http from "node:http";
import { randomBytes, timingSafeEqual, createHash } from "node:crypto";
import { existsSync, promises as fs } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { ControlPlane } from "./control-plane.js";

export const SESSION_COOKIE = "nodecert-dashboard";
export const CSRF_HEADER = "x-nodecert-csrf";
const MAX_SESSIONS = 64;
const MAX_ACTION_BODY = 64 * 1024;

const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  "cache-control": "no-store",
};

const TYPES: Record<string, string> = { ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".html": "text/html; charset=utf-8", ".png": "image/png", ".svg": "image/svg+xml" };

/** Reads the page may make, each one admin GET (the query is rebuilt from the known fields). */
const AUDIT_FIELDS = ["node", "rule", "type", "since", "until", "limit"];

/** Actions the page may take, each one admin POST: [dashboard path, admin route]. */
const ACTIONS: [RegExp, (m: RegExpExecArray) => string][] = [
  [/^\/api\/campaigns$/, () => "/v1/admin/campaigns"],
  [/^\/api\/campaigns\/([^/]+)\/cancel$/, (m) => `/v1/admin/campaigns/${encodeURIComponent(decodeURIComponent(m[1]))}/cancel`],
  [/^\/api\/ca\/rotate$/, () => "/v1/admin/ca/rotate"],
  [/^\/api\/ca\/advance$/, () => "/v1/admin/ca/advance"],
  [/^\/api\/nodes\/([^/]+)\/evict$/, (m) => `/v1/admin/nodes/${encodeURIComponent(decodeURIComponent(m[1]))}/evict`],
];

/** Paths that are also read with GET (the list of campaigns is read and POSTed to). */
const READS = [/^\/api\/campaigns$/];

/** Topics the page is told about when they change (it then reads them again). */
export type Topic = "fleet" | "campaigns" | "ca";
const TOPIC_ROUTES: Record<Topic, string> = { fleet: "/v1/admin/fleet", campaigns: "/v1/admin/campaigns", ca: "/v1/admin/ca" };

export interface DashboardOptions {
  controlPlane: ControlPlane;
  host: string;
  port: number;
  /** dist/ui (index.html, app.js, app.css); found next to the code by default. */
  assetsDir?: string;
  /** How often the control plane is read while a page is open, per topic. */
  pollMs?: Partial<Record<Topic, number>>;
  /** Timers (tests may hand in their own). */
  every?: (ms: number, fn: () => void) => { cancel(): void };
  onError?: (what: string, e: Error) => void;
}

export interface RunningDashboard {
  /** http://host:port */
  origin: string;
  port: number;
  /** The per-run URL that logs a browser in (holds the token). */
  loginUrl: string;
  /** A URL that logs in once, for --open (it appears in the browser's argv, so it burns on use). */
  oneTimeLoginUrl(): string;
  close(): Promise<void>;
}

export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function locateAssets(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  // dist/chunks/x.js and dist/cli/x.js → dist/ui; src/cli/dashboard/x.ts (tsx) → dist/ui.
  for (const c of [path.join(here, "../ui"), path.join(here, "../../ui"), path.join(here, "../../../dist/ui")]) if (existsSync(path.join(c, "index.html"))) return c;
  throw new Error(`the dashboard's assets (dist/ui/index.html) are missing next to ${here}: build them with 'npm run build'`);
}

const token = () => randomBytes(32).toString("base64url");
function sameSecret(a: string | undefined, b: string): boolean {
  if (typeof a !== "string") return false;
  const x = createHash("sha256").update(a).digest();
  const y = createHash("sha256").update(b).digest();
  return timingSafeEqual(x, y);
}

function cookies(req: http.IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const i = part.indexOf("=");
    if (i > 0) out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

interface Session {
  csrf: string;
}

export async function startDashboard(o: DashboardOptions): Promise<RunningDashboard> {
  if (!isLoopback(o.host)) throw new Error(`the dashboard listens on loopback only (127.0.0.1, ::1 or localhost), not "${o.host}": reach it from elsewhere through an SSH tunnel`);
  const assetsDir = o.assetsDir ?? locateAssets();
  const indexTemplate = await fs.readFile(path.join(assetsDir, "index.html"), "utf8");
  const assets = new Map<string, Buffer>();
  for (const f of await fs.readdir(assetsDir)) if (TYPES[path.extname(f)] && f !== "index.html") assets.set(`/assets/${f}`, await fs.readFile(path.join(assetsDir, f)));

  const runToken = token();
  const oneTime = new Set<string>();
  const sessions = new Map<string, Session>();
  const every = o.every ?? ((ms, fn) => { const t = setInterval(fn, ms); t.unref(); return { cancel: () => clearInterval(t) }; });
  const onError = o.onError ?? (() => {});

  // --- live updates: while a page listens, each topic is read on its interval; a change is announced.
  /** Open event streams, each with the topics its page shows: only those are read. */
  const listeners = new Map<http.ServerResponse, Set<Topic>>();
  const wanted = (topic: Topic) => [...listeners.values()].some((t) => t.has(topic));
  const versions = new Map<Topic, string>();
  const cache = new Map<Topic, { body: string; version: string; at: number }>();
  const timers: { cancel(): void }[] = [];
  const poll = async (topic: Topic, always = false) => {
    if (!always && !wanted(topic)) return;
    try {
      // Passed on as the control plane wrote it: parsing and re-serializing 10,000 nodes cost more than serving them.
      const r = await o.controlPlane.getText(TOPIC_ROUTES[topic]);
      if (r.status !== 200) return;
      const body = r.text;
      const version = createHash("sha256").update(body).digest("base64url").slice(0, 16);
      cache.set(topic, { body, version, at: Date.now() });
      if (versions.get(topic) === version) return;
      versions.set(topic, version);
      const frame = `event: change\ndata: ${JSON.stringify({ topic, version })}\n\n`;
      for (const [l, topics] of listeners) if (topics.has(topic)) l.write(frame);
    } catch (e) {
      onError(`reading ${topic}`, e as Error);
    }
  };
  const pollMs: Record<Topic, number> = { fleet: 5000, campaigns: 1000, ca: 2000, ...(o.pollMs ?? {}) };
  const polling = new Set<Topic>();
  for (const topic of Object.keys(pollMs) as Topic[]) {
    timers.push(
      every(pollMs[topic], () => {
        if (polling.has(topic)) return; // one read in flight per topic
        polling.add(topic);
        void poll(topic).finally(() => polling.delete(topic));
      }),
    );
  }

  let allowedHosts = new Set<string>();
  const send = (res: http.ServerResponse, status: number, body: string | Buffer, type = "application/json; charset=utf-8", extra: Record<string, string> = {}) => {
    res.writeHead(status, { ...SECURITY_HEADERS, "content-type": type, "content-length": String(Buffer.byteLength(body)), ...extra });
    res.end(body);
  };
  const refuse = (res: http.ServerResponse, status: number, error: string, reason: string, extra: Record<string, string> = {}) => send(res, status, JSON.stringify({ error, reason }), undefined, extra);

  /** Relays one admin request; the control plane's 4xx answers reach the page as they are. */
  const relay = async (res: http.ServerResponse, r: Promise<{ status: number; body: unknown } | { status: number; text: string }>) => {
    try {
      const out = await r;
      send(res, out.status, "text" in out ? out.text : JSON.stringify(out.body));
    } catch (e) {
      refuse(res, 502, "control-plane-unreachable", `the control plane at ${o.controlPlane.url} did not answer: ${(e as Error).message}`);
    }
  };

  const readBody = (req: http.IncomingMessage): Promise<string | undefined> =>
    new Promise((resolve) => {
      let size = 0;
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => {
        size += c.length;
        if (size > MAX_ACTION_BODY) {
          resolve(undefined);
          req.destroy();
        } else chunks.push(c);
      });
      req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
      req.on("error", () => resolve(undefined));
    });

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    // A refused request's body is never read: close the connection rather than parse it as the next request.
    if (req.method !== "GET" && req.method !== "HEAD") res.shouldKeepAlive = false;
    const host = req.headers.host ?? "";
    // DNS rebinding: a page of evil.example resolved to 127.0.0.1 still says Host: evil.example.
    if (!allowedHosts.has(host)) return refuse(res, 421, "wrong-host", `this dashboard answers only to ${[...allowedHosts].join(", ")}, not Host "${host}"`);
    const origin = req.headers.origin;
    if (origin !== undefined && !allowedHosts.has(origin.replace(/^http:\/\//, "")) ) return refuse(res, 403, "cross-origin", `requests from origin "${origin}" are refused: only this dashboard's own pages may call it`);
    const site = req.headers["sec-fetch-site"];
    if (site !== undefined && site !== "same-origin" && site !== "none") return refuse(res, 403, "cross-site", `a ${site} request is refused: open the dashboard's URL directly`);
    const url = new URL(req.url ?? "/", "http://dashboard.invalid");

    if (url.pathname === "/login") {
      if (req.method !== "GET") return refuse(res, 405, "method-not-allowed", "GET /login?token=...", { allow: "GET" });
      const t = url.searchParams.get("token") ?? undefined;
      let ok = sameSecret(t, runToken);
      if (!ok && t && oneTime.has(t)) {
        oneTime.delete(t);
        ok = true;
      }
      if (!ok) return refuse(res, 401, "bad-token", "this URL's token is not the one the dashboard printed at start: open the URL 'nodecert dashboard' printed");
      if (sessions.size >= MAX_SESSIONS) sessions.delete(sessions.keys().next().value!);
      const sid = token();
      sessions.set(sid, { csrf: token() });
      // The token leaves the address bar at once (303 to /), and no-referrer keeps it out of Referer.
      return send(res, 303, "", "text/plain", { location: "/", "set-cookie": `${SESSION_COOKIE}=${sid}; HttpOnly; SameSite=Strict; Path=/` });
    }

    const session = sessions.get(cookies(req)[SESSION_COOKIE] ?? "");
    if (!session) return refuse(res, 401, "no-session", "open the URL with the token that 'nodecert dashboard' printed when it started");

    const p = url.pathname;
    const action = ACTIONS.map(([re, to]) => { const m = re.exec(p); return m ? to(m) : undefined; }).find(Boolean);
    const readable = READS.some((re) => re.test(p));
    if (req.method === "POST") {
      if (!action) return refuse(res, 404, "no-such-action", `no action at ${p}`);
      if (origin === undefined) return refuse(res, 403, "no-origin", "an action must come from the dashboard's page (no Origin header)");
      if (!sameSecret(req.headers[CSRF_HEADER] as string | undefined, session.csrf)) return refuse(res, 403, "csrf", `an action needs this session's CSRF token in the ${CSRF_HEADER} header: reload the page`);
      if (!/^application\/json\b/.test(req.headers["content-type"] ?? "")) return refuse(res, 415, "json-only", "actions take application/json");
      const raw = await readBody(req);
      if (raw === undefined) return refuse(res, 413, "too-large", `an action's body is at most ${MAX_ACTION_BODY} bytes`);
      let body: unknown;
      try {
        body = raw ? JSON.parse(raw) : {};
      } catch {
        return refuse(res, 400, "invalid-json", "the action's body is not valid JSON");
      }
      if (typeof body !== "object" || body === null || Array.isArray(body)) return refuse(res, 400, "invalid-json", "the action's body must be a JSON object");
      // What the action changed is read again at once, not at the next interval.
      cache.clear();
      await relay(res, o.controlPlane.post(action, body));
      for (const t of Object.keys(TOPIC_ROUTES) as Topic[]) void poll(t);
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") return refuse(res, 405, "method-not-allowed", `${req.method} is not allowed`, { allow: action ? "POST" : "GET" });
    if (action && !readable) return refuse(res, 405, "post-only", `${p} is an action: POST it with the CSRF token`, { allow: "POST" });

    if (p === "/" || p === "/index.html") {
      // The CSRF token is this session's; the URL token and the admin key are never in a page.
      return send(res, 200, indexTemplate.replace("__CSRF__", session.csrf), TYPES[".html"]);
    }
    const asset = assets.get(p);
    if (asset) return send(res, 200, asset, TYPES[path.extname(p)]);
    if (p === "/api/events") {
      res.writeHead(200, { ...SECURITY_HEADERS, "content-type": "text/event-stream; charset=utf-8", connection: "keep-alive" });
      res.write(`retry: 2000\nevent: hello\ndata: {}\n\n`);
      const topics = new Set((url.searchParams.get("topics") ?? "fleet,campaigns,ca").split(",").filter((t): t is Topic => t in TOPIC_ROUTES));
      listeners.set(res, topics);
      req.on("close", () => listeners.delete(res));
      return;
    }
    const topic = ({ "/api/fleet": "fleet", "/api/campaigns": "campaigns", "/api/ca": "ca" } as Record<string, Topic>)[p];
    if (topic) {
      // What the last read brought, while no older than the topic's interval (pages that listen
      // keep it fresh): a page load then costs the control plane nothing. Otherwise read it now.
      const c = cache.get(topic);
      if (c && Date.now() - c.at <= pollMs[topic]) return send(res, 200, c.body);
      await poll(topic, true);
      const fresh = cache.get(topic);
      if (fresh) return send(res, 200, fresh.body);
      return relay(res, o.controlPlane.getText(TOPIC_ROUTES[topic]));
    }
    let m = /^\/api\/campaigns\/([^/]+)$/.exec(p);
    if (m) return relay(res, o.controlPlane.getText(`/v1/admin/campaigns/${encodeURIComponent(decodeURIComponent(m[1]))}`));
    m = /^\/api\/nodes\/([^/]+)$/.exec(p);
    if (m) return relay(res, o.controlPlane.getText(`/v1/admin/nodes/${encodeURIComponent(decodeURIComponent(m[1]))}`));
    if (p === "/api/audit") {
      const q = new URLSearchParams();
      for (const k of AUDIT_FIELDS) {
        const v = url.searchParams.get(k);
        if (v) q.set(k, v);
      }
      return relay(res, o.controlPlane.getText(`/v1/admin/audit${q.size ? `?${q}` : ""}`));
    }
    return refuse(res, 404, "not-found", `nothing at ${p}`);
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e) => {
      onError("request", e as Error);
      if (!res.headersSent) refuse(res, 400, "bad-request", (e as Error).message);
      else res.destroy();
    });
  });
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port, o.host, () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  const shown = o.host === "localhost" ? "localhost" : o.host.includes(":") ? `[${o.host}]` : o.host;
  allowedHosts = new Set([`${shown}:${port}`, `127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]);
  const originUrl = `http://${shown}:${port}`;
  return {
    origin: originUrl,
    port,
    loginUrl: `${originUrl}/login?token=${runToken}`,
    oneTimeLoginUrl() {
      const t = token();
      oneTime.add(t);
      return `${originUrl}/login?token=${t}`;
    },
    async close() {
      for (const t of timers) t.cancel();
      for (const l of listeners.keys()) l.end();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
