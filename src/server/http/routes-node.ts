// The control plane's HTTPS API (fastify, TLS 1.3 only).
import Fastify, { type FastifyInstance, type FastifyRequest } from "fastify";
import type { TLSSocket } from "node:tls";
import { CaBundleResponse, describeZodError, MAX_BODY_BYTES, PROTOCOL_VERSION, TokenCreateRequest, type JoinResponse, type RenewResponse } from "../../protocol/messages.js";
import { ADMIN_CN, ADMIN_ORG } from "../../pki/names.js";
import { checkPeer, isTlsSocket } from "../peer.js";
import { normalizeSerial } from "../../pki/certificate-info.js";
import type { RandomBytes } from "../../pki/certificate.js";
import type { ServerConfig } from "../../config/server.js";
import type { Logger } from "../../platform/log.js";
import type { Authority } from "../ca/authority.js";
import type { Store } from "../store/store.js";
import { HttpError } from "./errors.js";
import { generateToken, hashSecret, parseToken } from "../tokens.js";
import { applyServerTimeouts, fastifyTimeoutOptions } from "./limits.js";
import { sourceKey } from "../source-key.js";
import type { PolicyConfig } from "../policy.js";
import { serverSanPolicy, tokenSans } from "../san-registry.js";
import { tlsCipherOptions } from "../../crypto/fips-policy.js";
import { Issuer, IssuanceRefusal, type JoinToken } from "../issuance.js";
import { authenticateNode } from "../node-auth.js";

export interface ApiDeps {
  config: ServerConfig;
  authority: Authority;
  store: Store;
  logger: Logger;
  clock: () => Date;
  random: RandomBytes;
  tls: { certPem: string; keyPem: string };
  /** The process runs on the FIPS provider: FIPS TLS suites and the FIPS algorithm policy. */
  fips?: boolean;
  /** Admin routes beyond tokens (fleet, campaigns, CA rotation), registered by the caller. */
  registerAdmin?: (app: FastifyInstance) => void;
  /** Whether the store answers (etcd can be lost): when not, nothing is signed (503 with the reason) and /readyz says so. */
  readiness?: () => { ready: boolean; reason?: string };
}

/** Routes a node or anyone may call; every other route is admin-only (mTLS admin certificate). */
export const NODE_ROUTES = new Set(["/healthz", "/readyz", "/v1/ca", "/v1/join", "/v1/renew"]);

export const TLS13_ONLY = { minVersion: "TLSv1.3", maxVersion: "TLSv1.3" } as const;

/** TLS 1.3 only, with the FIPS suites pinned in FIPS mode. */
export function serverTlsOptions(fips: boolean) {
  return { ...TLS13_ONLY, ...tlsCipherOptions(fips) };
}

export async function buildApi(d: ApiDeps): Promise<FastifyInstance> {
  const limits = d.config.limits;
  const app = Fastify({
    logger: false,
    bodyLimit: MAX_BODY_BYTES,
    ...fastifyTimeoutOptions(limits),
    https: {
      // A TLS handshake that never finishes holds a descriptor like a stalled request does.
      handshakeTimeout: limits.headersTimeout,
      key: d.tls.keyPem,
      cert: d.tls.certPem,
      ca: d.authority.trustBundle + d.authority.intermediates,
      // Client certificates are requested but optional: join uses a bearer token, admin and
      // (later) renewal require a verified certificate, checked per route.
      requestCert: true,
      rejectUnauthorized: false,
      ...serverTlsOptions(!!d.fips),
    },
  });
  applyServerTimeouts(app.server, limits);
  const policy: PolicyConfig = { ...d.config.policy, ...serverSanPolicy(d.config), fips: !!d.fips, requireFipsNodes: d.config.requireFipsNodes };
  const issuer = new Issuer({ config: d.config, authority: d.authority, store: d.store, logger: d.logger, clock: d.clock, random: d.random, policy });
  // Failed attempts count per source, not per address string (IPv4-mapped, one IPv6 /64).
  const sourceOf = (req: FastifyRequest) => sourceKey(req.ip, limits.ipv6SourcePrefix);

  // Deny by default: every route except the node-facing ones gets the admin check attached to the
  // route itself, so it applies however the URL was spelled (%61dmin reaches the same route).
  app.addHook("onRoute", (route) => {
    if (NODE_ROUTES.has(route.url)) return;
    const existing = route.onRequest === undefined ? [] : Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest];
    route.onRequest = [async (req: FastifyRequest) => requireAdmin(req, d.store, d.authority, d.clock()), ...existing];
  });

  app.server.on("tlsClientError", (err, socket) => {
    d.logger.warn("TLS handshake refused", { source: socket.remoteAddress, reason: err.message });
  });

  app.setErrorHandler((err, req, reply) => {
    // Refused before its body was read (a bad token): do not wait for, or read, the rest.
    if (!req.raw.complete) reply.header("connection", "close");
    if (err instanceof HttpError) return reply.status(err.status).send(err.body());
    // The store was lost mid-request (etcd without quorum): nothing was committed; retry elsewhere.
    if ((err as { code?: string }).code === "store-unavailable") return reply.status(503).send({ error: "store-unavailable", reason: (err as Error).message });
    const fe = err as { statusCode?: number; code?: string; message: string };
    if (fe.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
      return reply.status(413).send({ error: "body-too-large", reason: `request body exceeds ${MAX_BODY_BYTES} bytes` });
    }
    if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
      return reply.status(fe.statusCode).send({ error: "bad-request", reason: fe.message });
    }
    d.logger.error("request failed", { url: req.url, error: fe.message });
    return reply.status(500).send({ error: "internal", reason: "the server failed to handle the request; see its log" });
  });

  app.addHook("onResponse", async (req, reply) => {
    d.logger.info("request", { method: req.method, route: req.routeOptions.url ?? req.url, status: reply.statusCode, source: req.ip, ms: Math.round(reply.elapsedTime) });
  });

  // The server's clock, not the host's: a joining node compares its own against it (agent/clock-skew).
  app.addHook("onSend", async (_req, reply) => {
    reply.header("date", d.clock().toUTCString());
  });

  app.get("/healthz", async () => ({ ok: true }));

  // Ready = may sign: a replica that lost its store answers 503 with why, instead of answering from stale state.
  const readiness = d.readiness ?? (() => ({ ready: true }));
  app.get("/readyz", async (_req, reply) => {
    const r = readiness();
    return r.ready ? { ready: true } : reply.status(503).send({ ready: false, error: "store-unavailable", reason: r.reason });
  });
  app.addHook("onRequest", async (req) => {
    if (req.method !== "POST" && req.method !== "PUT" && req.method !== "DELETE") return;
    const r = readiness();
    if (!r.ready) throw new HttpError(503, "store-unavailable", `this replica does not sign now: ${r.reason}; another replica may`);
  });

  // Fetched by a joining node without trust; the node checks it against its CA pin.
  app.get("/v1/ca", async () => CaBundleResponse.parse({ v: PROTOCOL_VERSION, caBundle: d.authority.trustBundle }));

  // The token is checked as soon as the headers are in, before the body is read.
  const joinTokens = new WeakMap<FastifyRequest, JoinToken>();
  const checkJoinToken = async (req: FastifyRequest): Promise<void> => {
    joinTokens.set(req, await refusalsAsHttp(() => issuer.checkJoinToken(req.headers.authorization, req.ip, sourceOf(req))));
  };

  app.post("/v1/join", { onRequest: checkJoinToken }, async (req): Promise<JoinResponse> =>
    refusalsAsHttp(() => issuer.join({ ...joinTokens.get(req)!, body: req.body, source: req.ip, sourceKey: sourceOf(req) })),
  );

  // Identity comes only from the client certificate (node-auth, shared with the fleet channel).
  app.post("/v1/renew", async (req): Promise<RenewResponse> => {
    const auth = authenticateNode(req.raw.socket, d.authority, d.clock(), { expiredGraceMs: d.config.renewAfterExpiry });
    return refusalsAsHttp(() => issuer.renew({ auth, body: req.body, source: req.ip }));
  });

  app.post("/v1/admin/tokens", async (req) => {
    const body = TokenCreateRequest.safeParse(req.body);
    if (!body.success) throw new HttpError(400, "invalid-request", describeZodError(body.error));
    const now = d.clock();
    const token = generateToken(d.random);
    const { id, secret } = parseToken(token)!;
    const expiresAt = new Date(now.getTime() + body.data.ttlSeconds * 1000);
    // SANs bound to the token become the node's grants when it joins; refused ones are refused now.
    const sans = await tokenSans(d.store, policy, body.data, id, now);
    await d.store.insertToken({ id, secretHash: hashSecret(secret), node: body.data.node, usesLeft: body.data.uses, expiresAt, createdAt: now, description: body.data.description, sans });
    await d.store.audit({ time: now, type: "token.created", node: body.data.node, source: req.ip, detail: { tokenId: id, uses: body.data.uses, expiresAt: expiresAt.toISOString(), ...(sans ? { sans } : {}) } });
    d.logger.info("bootstrap token created", { tokenId: id, node: body.data.node, uses: body.data.uses, expiresAt: expiresAt.toISOString() });
    return { token, id, expiresAt: expiresAt.toISOString() };
  });

  d.registerAdmin?.(app);
  return app;
}

/** The Issuer's refusals become the HTTP answers they name. */
async function refusalsAsHttp<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof IssuanceRefusal) throw new HttpError(e.status, e.code, e.reason, e.rule);
    throw e;
  }
}

/** Admin endpoints answer only to the admin certificate this server issued at init. */
async function requireAdmin(req: FastifyRequest, store: Store, authority: Authority, now: Date): Promise<void> {
  const socket = req.raw.socket as TLSSocket;
  const pc = isTlsSocket(socket) ? checkPeer(socket, authority.trustBundle, now, authority.intermediates) : undefined;
  if (!pc || !pc.ok || pc.expired) {
    throw new HttpError(401, "admin-auth-required", "admin endpoints need the admin client certificate from 'nodecert server init' (mTLS)");
  }
  const info = pc.peer.info;
  const rec = await store.getCertificate(normalizeSerial(info.serial));
  if (info.subjectCN !== ADMIN_CN || info.subjectO[0] !== ADMIN_ORG || !rec || rec.kind !== "admin") {
    throw new HttpError(403, "not-admin", `client certificate "${info.subjectCN}" is not this server's admin certificate`);
  }
}
