// The control plane's HTTPS API (fastify, TLS 1.3 only).
import Fastify, { type FastifyInstance, type FastifyRequest } from "fastify";
import type { TLSSocket } from "node:tls";
import { CaBundleResponse, describeZodError, JoinRequest, MAX_BODY_BYTES, PROTOCOL_VERSION, RenewRequest, TokenCreateRequest, type JoinResponse, type RenewResponse } from "../../protocol/messages.js";
import { parseCsr, nodeSubject, type ParsedCsr } from "../../pki/csr.js";
import { ADMIN_CN, ADMIN_ORG, NODE_CN_PREFIX, NODE_ORG } from "../../pki/names.js";
import { checkPeer, isTlsSocket, type PeerIdentity } from "../peer.js";
import { formatDuration } from "../../config/duration.js";
import { normalizeSerial } from "../../pki/certificate-info.js";
import type { RandomBytes } from "../../pki/certificate.js";
import type { ServerConfig } from "../../config/server.js";
import type { Logger } from "../../platform/log.js";
import type { Authority } from "../ca/authority.js";
import type { Store } from "../store/store.js";
import { HttpError } from "./errors.js";
import { checkToken, FailureLimiter, generateToken, hashSecret, parseToken, type TokenRecord } from "../tokens.js";
import { applyServerTimeouts, fastifyTimeoutOptions } from "./limits.js";
import { sourceKey } from "../source-key.js";
import { mayActForNode } from "../lineage.js";
import { evaluate, type PolicyConfig } from "../policy.js";
import { sanContext, serverSanPolicy, tokenSans } from "../san-registry.js";
import { sign } from "../ca/signer.js";
import { JoinConfirmations, type ProvisionalJoin } from "../join-confirmation.js";
import { tlsCipherOptions } from "../../crypto/fips-policy.js";

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
}

/** Routes a node or anyone may call; every other route is admin-only (mTLS admin certificate). */
export const NODE_ROUTES = new Set(["/healthz", "/v1/ca", "/v1/join", "/v1/renew"]);

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
  const limiter = new FailureLimiter(d.config.tokens.maxFailures, d.config.tokens.failureWindow, () => d.clock().getTime());
  // Failed attempts count per source, not per address string (IPv4-mapped, one IPv6 /64).
  const sourceOf = (req: FastifyRequest) => sourceKey(req.ip, limits.ipv6SourcePrefix);
  // ...and per token id, in the same limiter under their own keys.
  const tokenKey = (id: string) => `token-id:${id}`;

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

  // Fetched by a joining node without trust; the node checks it against its CA pin.
  app.get("/v1/ca", async () => CaBundleResponse.parse({ v: PROTOCOL_VERSION, caBundle: d.authority.trustBundle }));

  // The token is checked as soon as the headers are in, before the body is read: a stranger
  // without a valid token cannot make the server buffer, parse or wait for anything.
  const joinTokens = new WeakMap<FastifyRequest, TokenRecord>();
  const joinRetries = new WeakMap<FastifyRequest, ProvisionalJoin>();
  const confirmations = new JoinConfirmations(d.store);
  const checkJoinToken = async (req: FastifyRequest): Promise<void> => {
    const now = d.clock();
    const source = req.ip;
    const key = sourceOf(req);
    const wait = limiter.retryAfter(key);
    if (wait > 0) {
      throw new HttpError(429, "rate-limited", `too many failed token attempts from ${key}; retry in ${Math.ceil(wait / 1000)}s`);
    }
    const presented = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? "")?.[1];
    if (!presented) {
      limiter.fail(key);
      throw new HttpError(401, "token-missing", "send the bootstrap token as 'Authorization: Bearer <token>'");
    }
    const parsed = parseToken(presented);
    const idWait = parsed ? limiter.retryAfter(tokenKey(parsed.id)) : 0;
    if (idWait > 0) {
      throw new HttpError(429, "rate-limited", `too many failed attempts with bootstrap token ${parsed!.id}; retry in ${Math.ceil(idWait / 1000)}s, or create a new token`);
    }
    const record = parsed ? await d.store.getToken(parsed.id) : undefined;
    const check = checkToken(presented, record, now);
    // A spent (or since expired) token whose join the node never confirmed may retry it.
    const retry = !check.ok && (check.code === "token-used" || check.code === "token-expired") ? await confirmations.pending(record!.id, now) : undefined;
    if (retry) {
      joinTokens.set(req, record!);
      joinRetries.set(req, retry);
      return;
    }
    if (!check.ok) {
      // A known token with the right secret (spent, expired) is a node with stale credentials, not
      // a guess: it counts against that token only, so its neighbours behind one NAT still join.
      if (check.code !== "token-used" && check.code !== "token-expired") limiter.fail(key);
      if (parsed) limiter.fail(tokenKey(parsed.id));
      await d.store.audit({ time: now, type: "token.rejected", source, reason: check.reason, detail: parsed ? { tokenId: parsed.id, code: check.code } : { code: check.code } });
      throw new HttpError(401, check.code, check.reason);
    }
    joinTokens.set(req, check.record);
  };

  app.post("/v1/join", { onRequest: checkJoinToken }, async (req): Promise<JoinResponse> => {
    const now = d.clock();
    const source = req.ip;
    const token = joinTokens.get(req)!;
    const body = JoinRequest.safeParse(req.body);
    if (!body.success) throw new HttpError(400, "invalid-request", describeZodError(body.error));
    const jr = body.data;
    const [client, serving] = await Promise.all([parseCsrOr400(jr.csrs.client, "client"), parseCsrOr400(jr.csrs.serving, "serving")]);
    const retry = joinRetries.get(req);
    const retryRefused = retry && (await confirmations.refusal(retry, jr.nodeName, client.spki));
    if (retryRefused) {
      limiter.fail(tokenKey(token.id));
      await d.store.audit({ time: now, type: "token.rejected", source, reason: retryRefused, detail: { tokenId: token.id, code: "token-used" } });
      throw new HttpError(401, "token-used", retryRefused);
    }
    const deny = async (rule: string, reason: string): Promise<never> => {
      await d.store.audit({ time: now, type: "join.denied", node: jr.nodeName, source, rule, reason, detail: { tokenId: token.id } });
      d.logger.warn("join denied", { node: jr.nodeName, source, rule, reason });
      throw new HttpError(403, "denied", reason, rule);
    };
    // SANs come from what the control plane knows: this join's source address, the token's bound SANs, approvals.
    const sans = await sanContext(d.store, policy, jr.nodeName, serving.sans, now, { joinAddress: source, token: token });
    const decision = evaluate({ nodeName: jr.nodeName, boundNode: token.node, facts: jr.facts, client, serving, sans }, policy);
    if (!decision.allowed) return deny(decision.rule, decision.reason);
    // A token that anyone may use must not take over a node that exists (or lift its eviction):
    // that needs a token the operator bound to this node.
    const existing = await d.store.getNode(jr.nodeName);
    if (existing && token.node !== jr.nodeName && !retry) {
      return deny(
        "existing-node",
        `node "${jr.nodeName}" already joined (first seen ${existing.firstSeen.toISOString()}, last seen ${existing.lastSeen.toISOString()}` +
          `${existing.evictedAt ? `, evicted at ${existing.evictedAt.toISOString()}` : ""}); an unbound bootstrap token cannot take it over: ` +
          `to re-join it, create a token bound to it with 'nodecert token create --node ${jr.nodeName}'`,
      );
    }
    const subject = nodeSubject(jr.nodeName);
    const signedClient = await sign(d.authority.signer, { owner: jr.nodeName, subject, spki: client.spki, kind: "client", lifetimeMs: d.config.certificates.maxClientLifetime }, now, d.random);
    const signedServing = await sign(
      d.authority.signer,
      { owner: jr.nodeName, subject, spki: serving.spki, kind: "serving", sans: serving.sans, lifetimeMs: d.config.certificates.maxServingLifetime },
      now,
      d.random,
    );
    if (retry) {
      await confirmations.commitRetry(retry, [signedClient.record, signedServing.record], now, source);
      d.logger.info("node retried its unconfirmed join", { node: jr.nodeName, source, clientSerial: signedClient.record.serial });
      return { v: PROTOCOL_VERSION, nodeName: jr.nodeName, certificates: { client: signedClient.chainPem, serving: signedServing.chainPem }, caBundle: d.authority.trustBundle, apiServer: d.config.apiServerUrl };
    }
    const committed = await d.store.commitJoin({
      tokenId: token.id,
      now,
      node: jr.nodeName,
      joinAddress: source,
      // Checked again inside the transaction that spends the token: of several joins racing for a
      // new name with unbound tokens, exactly one creates it.
      mayReplace: token.node === jr.nodeName,
      facts: jr.facts,
      certificates: [signedClient.record, signedServing.record],
      audit: {
        time: now,
        type: existing ? "join.rejoined" : "join.issued",
        node: jr.nodeName,
        source,
        detail: { tokenId: token.id, client: signedClient.record.serial, serving: signedServing.record.serial, ...(existing?.evictedAt ? { liftedEviction: existing.evictedAt.toISOString() } : {}) },
      },
    });
    if (committed.code === "existing-node") {
      return deny("existing-node", `node "${jr.nodeName}" was created by another join while this one ran (first seen ${committed.node.firstSeen.toISOString()}); an unbound bootstrap token cannot take it over: to re-join it, create a token bound to it with 'nodecert token create --node ${jr.nodeName}'`);
    }
    if (committed.code === "token-used") {
      limiter.fail(tokenKey(token.id));
      throw new HttpError(401, "token-used", `bootstrap token ${token.id} was used up or expired while this request ran: create a new one`);
    }
    await confirmations.record(token.id, jr.nodeName, client.spki, signedClient.record.serial, now);
    d.logger.info("node joined", { node: jr.nodeName, source, clientSerial: signedClient.record.serial, servingSerial: signedServing.record.serial });
    return {
      v: PROTOCOL_VERSION,
      nodeName: jr.nodeName,
      certificates: { client: signedClient.chainPem, serving: signedServing.chainPem },
      caBundle: d.authority.trustBundle,
      apiServer: d.config.apiServerUrl,
    };
  });

  app.post("/v1/renew", async (req): Promise<RenewResponse> => {
    const now = d.clock();
    const source = req.ip;
    const deny = async (status: number, code: string, reason: string, rule?: string, node?: string): Promise<never> => {
      await d.store.audit({ time: now, type: "renew.denied", node, source, rule, reason });
      d.logger.warn("renewal denied", { node, source, rule, reason });
      throw new HttpError(status, code, reason, rule);
    };
    const peer = await authenticateNode(req, d, now, deny);
    const nodeName = peer.info.subjectCN!.slice(NODE_CN_PREFIX.length);
    const node = await d.store.getNode(nodeName);
    if (!node) return deny(403, "denied", `node "${nodeName}" is not known to this server: join it with a bootstrap token`, "known-node", nodeName);
    if (node.evictedAt) return deny(403, "denied", `node "${nodeName}" was evicted at ${node.evictedAt.toISOString()}; it can no longer renew`, "evicted", nodeName);
    const serial = peer.info.serial;
    const newest = (await d.store.latestCertificates(nodeName, "client", 1))[0];
    const lineageDenied = (newestSerial: string | undefined, confirmed: string | undefined) =>
      deny(
        403,
        "denied",
        `client certificate ${serial} is neither the newest issued to node "${nodeName}" (${newestSerial ?? "none"}) nor the last one it used (${confirmed ?? "none"}): ` +
          `an older or copied certificate cannot renew; re-join the node with a bootstrap token`,
        "lineage",
        nodeName,
      );
    if (!mayActForNode(serial, { newest: newest?.serial, confirmed: node.confirmedSerial })) return lineageDenied(newest?.serial, node.confirmedSerial);
    const body = RenewRequest.safeParse(req.body);
    if (!body.success) throw new HttpError(400, "invalid-request", describeZodError(body.error));
    const rr = body.data;
    const client = rr.csrs.client ? await parseCsrOr400(rr.csrs.client, "client") : undefined;
    const serving = rr.csrs.serving ? await parseCsrOr400(rr.csrs.serving, "serving") : undefined;
    const sans = serving ? await sanContext(d.store, policy, nodeName, serving.sans, now, { joinAddress: node.joinAddress, connectionAddress: source }) : undefined;
    const decision = evaluate({ nodeName, facts: rr.facts, client, serving, sans }, policy);
    if (!decision.allowed) return deny(403, "denied", decision.reason, decision.rule, nodeName);
    const subject = nodeSubject(nodeName);
    const signedClient = client
      ? await sign(d.authority.signer, { owner: nodeName, subject, spki: client.spki, kind: "client", lifetimeMs: d.config.certificates.maxClientLifetime }, now, d.random)
      : undefined;
    const signedServing = serving
      ? await sign(d.authority.signer, { owner: nodeName, subject, spki: serving.spki, kind: "serving", sans: serving.sans, lifetimeMs: d.config.certificates.maxServingLifetime }, now, d.random)
      : undefined;
    const records = [signedClient?.record, signedServing?.record].filter((r) => r !== undefined);
    // The lineage is checked again where it is committed: a copy of an old certificate racing the
    // node's newest cannot have both renewals succeed.
    const committed = await d.store.commitRenewal({
      now,
      node: nodeName,
      facts: rr.facts,
      confirmedSerial: serial,
      certificates: records,
      audit: { time: now, type: "renew.issued", node: nodeName, source, detail: { presented: serial, client: signedClient?.record.serial, serving: signedServing?.record.serial } },
    });
    if (committed.code === "lineage") return lineageDenied(committed.newest, committed.confirmed);
    if (committed.code === "evicted") return deny(403, "denied", `node "${nodeName}" was evicted at ${committed.at.toISOString()}; it can no longer renew`, "evicted", nodeName);
    if (committed.code === "unknown-node") return deny(403, "denied", `node "${nodeName}" is not known to this server: join it with a bootstrap token`, "known-node", nodeName);
    d.logger.info("node renewed", { node: nodeName, source, presented: serial, clientSerial: signedClient?.record.serial, servingSerial: signedServing?.record.serial });
    return {
      v: PROTOCOL_VERSION,
      nodeName,
      certificates: { client: signedClient?.chainPem, serving: signedServing?.chainPem },
      caBundle: d.authority.trustBundle,
    };
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

async function parseCsrOr400(pem: string, kind: string): Promise<ParsedCsr> {
  try {
    return await parseCsr(pem);
  } catch (e) {
    throw new HttpError(400, "invalid-csr", `${kind} CSR: ${(e as Error).message}`);
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

/** A node authenticates with its client certificate; identity comes only from that certificate. */
async function authenticateNode(
  req: FastifyRequest,
  d: ApiDeps,
  now: Date,
  deny: (status: number, code: string, reason: string, rule?: string, node?: string) => Promise<never>,
): Promise<PeerIdentity> {
  const socket = req.raw.socket;
  if (!isTlsSocket(socket)) return deny(401, "client-cert-required", "renewal needs the node's current client certificate (mTLS)");
  const pc = checkPeer(socket, d.authority.trustBundle, now, d.authority.intermediates);
  if (!pc.ok) return deny(401, "client-cert-required", pc.reason);
  const info = pc.peer.info;
  const cn = info.subjectCN ?? "";
  if (!cn.startsWith(NODE_CN_PREFIX) || info.subjectO.length !== 1 || info.subjectO[0] !== NODE_ORG || !info.extendedKeyUsages.includes("1.3.6.1.5.5.7.3.2")) {
    return deny(403, "not-a-node", `client certificate "${cn}" is not a kubelet client certificate (CN system:node:<name>, O system:nodes, clientAuth)`);
  }
  if (pc.expired) {
    const node = cn.slice(NODE_CN_PREFIX.length);
    const grace = d.config.renewAfterExpiry;
    const late = now.getTime() - info.notAfter.getTime();
    if (grace <= 0 || late > grace) {
      return deny(
        401,
        "certificate-expired",
        `client certificate expired at ${info.notAfter.toISOString()} (${formatDuration(late)} ago); ` +
          (grace > 0 ? `this server accepts expired certificates for only ${formatDuration(grace)}` : "this server does not accept expired certificates (renewAfterExpiry is off)") +
          `: re-join the node with a bootstrap token`,
        "expired",
        node,
      );
    }
    d.logger.warn("accepting an expired client certificate within renewAfterExpiry", { node, expiredAt: info.notAfter.toISOString() });
  }
  return pc.peer;
}
