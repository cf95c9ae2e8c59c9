// The control plane's HTTPS API (fastify, TLS 1.3 only).
import Fastify, { type FastifyInstance, type FastifyRequest } from "fastify";
import type { TLSSocket } from "node:tls";
import { CaBundleResponse, describeZodError, JoinRequest, MAX_BODY_BYTES, PROTOCOL_VERSION, TokenCreateRequest, type JoinResponse } from "../protocol/messages.js";
import { parseCsr, nodeSubject, type ParsedCsr } from "../pki/csr.js";
import { ADMIN_CN, ADMIN_ORG } from "../pki/names.js";
import { normalizeSerial } from "../pki/certificate-info.js";
import type { RandomBytes } from "../pki/certificate.js";
import type { ServerConfig } from "../config/server.js";
import type { Logger } from "../log.js";
import type { LoadedCa } from "./ca.js";
import type { Store } from "./store/store.js";
import { HttpError } from "./http-error.js";
import { checkToken, FailureLimiter, generateToken, hashSecret, parseToken } from "./tokens.js";
import { evaluate } from "./policy.js";
import { sign } from "./signer.js";

export interface ApiDeps {
  config: ServerConfig;
  ca: LoadedCa;
  store: Store;
  logger: Logger;
  clock: () => Date;
  random: RandomBytes;
  tls: { certPem: string; keyPem: string };
}

export const TLS13_ONLY = { minVersion: "TLSv1.3", maxVersion: "TLSv1.3" } as const;

export async function buildApi(d: ApiDeps): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    bodyLimit: MAX_BODY_BYTES,
    https: {
      key: d.tls.keyPem,
      cert: d.tls.certPem,
      ca: d.ca.bundlePem + d.ca.intermediatesPem,
      // Client certificates are requested but optional: join uses a bearer token, admin and
      // (later) renewal require a verified certificate, checked per route.
      requestCert: true,
      rejectUnauthorized: false,
      ...TLS13_ONLY,
    },
  });
  const limiter = new FailureLimiter(d.config.tokens.maxFailures, d.config.tokens.failureWindow, () => d.clock().getTime());

  app.server.on("tlsClientError", (err, socket) => {
    d.logger.warn("TLS handshake refused", { source: socket.remoteAddress, reason: err.message });
  });

  app.setErrorHandler((err, req, reply) => {
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

  app.get("/healthz", async () => ({ ok: true }));

  // Fetched by a joining node without trust; the node checks it against its CA pin.
  app.get("/v1/ca", async () => CaBundleResponse.parse({ v: PROTOCOL_VERSION, caBundle: d.ca.bundlePem }));

  app.post("/v1/join", async (req): Promise<JoinResponse> => {
    const now = d.clock();
    const source = req.ip;
    const wait = limiter.retryAfter(source);
    if (wait > 0) {
      throw new HttpError(429, "rate-limited", `too many failed token attempts from ${source}; retry in ${Math.ceil(wait / 1000)}s`);
    }
    const presented = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? "")?.[1];
    if (!presented) {
      limiter.fail(source);
      throw new HttpError(401, "token-missing", "send the bootstrap token as 'Authorization: Bearer <token>'");
    }
    const parsed = parseToken(presented);
    const check = checkToken(presented, parsed ? await d.store.getToken(parsed.id) : undefined, now);
    if (!check.ok) {
      limiter.fail(source);
      await d.store.audit({ time: now, type: "token.rejected", source, reason: check.reason, detail: parsed ? { tokenId: parsed.id, code: check.code } : { code: check.code } });
      throw new HttpError(401, check.code, check.reason);
    }
    const body = JoinRequest.safeParse(req.body);
    if (!body.success) throw new HttpError(400, "invalid-request", describeZodError(body.error));
    const jr = body.data;
    const [client, serving] = await Promise.all([parseCsrOr400(jr.csrs.client, "client"), parseCsrOr400(jr.csrs.serving, "serving")]);
    const decision = evaluate({ nodeName: jr.nodeName, boundNode: check.record.node, facts: jr.facts, client, serving }, d.config.policy);
    if (!decision.allowed) {
      await d.store.audit({ time: now, type: "join.denied", node: jr.nodeName, source, rule: decision.rule, reason: decision.reason, detail: { tokenId: check.record.id } });
      d.logger.warn("join denied", { node: jr.nodeName, source, rule: decision.rule, reason: decision.reason });
      throw new HttpError(403, "denied", decision.reason, decision.rule);
    }
    const subject = nodeSubject(jr.nodeName);
    const signedClient = await sign(d.ca, { owner: jr.nodeName, subject, spki: client.spki, kind: "client", lifetimeMs: d.config.certificates.maxClientLifetime }, now, d.random);
    const signedServing = await sign(
      d.ca,
      { owner: jr.nodeName, subject, spki: serving.spki, kind: "serving", sans: [...serving.sans.dns, ...serving.sans.ip], lifetimeMs: d.config.certificates.maxServingLifetime },
      now,
      d.random,
    );
    const committed = await d.store.commitJoin({
      tokenId: check.record.id,
      now,
      node: jr.nodeName,
      facts: jr.facts,
      certificates: [signedClient.record, signedServing.record],
      audit: { time: now, type: "join.issued", node: jr.nodeName, source, detail: { tokenId: check.record.id, client: signedClient.record.serial, serving: signedServing.record.serial } },
    });
    if (!committed) {
      limiter.fail(source);
      throw new HttpError(401, "token-used", `bootstrap token ${check.record.id} was used up or expired while this request ran: create a new one`);
    }
    d.logger.info("node joined", { node: jr.nodeName, source, clientSerial: signedClient.record.serial, servingSerial: signedServing.record.serial });
    return {
      v: PROTOCOL_VERSION,
      nodeName: jr.nodeName,
      certificates: { client: signedClient.chainPem, serving: signedServing.chainPem },
      caBundle: d.ca.bundlePem,
      apiServer: d.config.apiServerUrl,
    };
  });

  app.post("/v1/admin/tokens", async (req) => {
    await requireAdmin(req, d.store);
    const body = TokenCreateRequest.safeParse(req.body);
    if (!body.success) throw new HttpError(400, "invalid-request", describeZodError(body.error));
    const now = d.clock();
    const token = generateToken(d.random);
    const { id, secret } = parseToken(token)!;
    const expiresAt = new Date(now.getTime() + body.data.ttlSeconds * 1000);
    await d.store.insertToken({ id, secretHash: hashSecret(secret), node: body.data.node, usesLeft: body.data.uses, expiresAt, createdAt: now, description: body.data.description });
    await d.store.audit({ time: now, type: "token.created", node: body.data.node, source: req.ip, detail: { tokenId: id, uses: body.data.uses, expiresAt: expiresAt.toISOString() } });
    d.logger.info("bootstrap token created", { tokenId: id, node: body.data.node, uses: body.data.uses, expiresAt: expiresAt.toISOString() });
    return { token, id, expiresAt: expiresAt.toISOString() };
  });

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
async function requireAdmin(req: FastifyRequest, store: Store): Promise<void> {
  const socket = req.raw.socket as TLSSocket;
  const peer = socket.getPeerCertificate?.();
  if (!peer || !peer.subject || !socket.authorized) {
    throw new HttpError(401, "admin-auth-required", "admin endpoints need the admin client certificate from 'nodecert server init' (mTLS)");
  }
  const rec = await store.getCertificate(normalizeSerial(peer.serialNumber));
  const cn = peer.subject.CN;
  const o = peer.subject.O;
  if (cn !== ADMIN_CN || o !== ADMIN_ORG || !rec || rec.kind !== "admin") {
    throw new HttpError(403, "not-admin", `client certificate "${cn}" is not this server's admin certificate`);
  }
}
