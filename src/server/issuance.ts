// The Issuer: every certificate a node gets goes through here. join() (bootstrap token, policy,
// the node's existence, two certificates, the token spent in the commit) and renew() (the
// authenticated node's standing and lineage, policy, certificates, the commit). Routes and the
// channel only authenticate, call it and render; a refusal is an `IssuanceRefusal` carrying a code,
// the rule that refused and a reason a person can act on.
import { describeZodError, JoinRequest, PROTOCOL_VERSION, RenewRequest, type JoinResponse, type RenewResponse } from "../protocol/messages.js";
import { nodeSubject, type ParsedCsr } from "../pki/csr.js";
import { parseCsrFast } from "../pki/csr-der.js";
import { formatDuration } from "../config/duration.js";
import type { RandomBytes } from "../pki/certificate.js";
import type { ServerConfig } from "../config/server.js";
import type { Logger } from "../platform/log.js";
import type { Authority } from "./ca/authority.js";
import type { Store } from "./store/store.js";
import { checkToken, FailureLimiter, parseToken, type TokenRecord } from "./tokens.js";
import { evaluate, type PolicyConfig } from "./policy.js";
import { sanContext } from "./san-registry.js";
import { sign } from "./ca/signer.js";
import { nodeStanding, type NodeAuth } from "./node-auth.js";
import { JoinConfirmations, type ProvisionalJoin } from "./join-confirmation.js";

/** A request the Issuer refuses; `status` is the HTTP status the API answers with. */
export class IssuanceRefusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly reason: string,
    readonly rule?: string,
  ) {
    super(reason);
  }
}

/** A bootstrap token that passed the check: new, or a retry of the node's still unconfirmed join. */
export interface JoinToken {
  token: TokenRecord;
  retry?: ProvisionalJoin;
}

/** Failed attempts with a known token id count under their own key in the same limiter. */
const tokenKey = (id: string) => `token-id:${id}`;

export interface IssuerDeps {
  config: ServerConfig;
  authority: Authority;
  store: Store;
  logger: Logger;
  clock: () => Date;
  random: RandomBytes;
  policy: PolicyConfig;
}

export class Issuer {
  /** Failed token attempts per source (a source key, see source-key.ts) and per token id. */
  private readonly limiter: FailureLimiter;
  /** Joins stay provisional until the node proves it installed them (join-confirmation.ts). */
  private readonly confirmations: JoinConfirmations;

  constructor(private readonly d: IssuerDeps) {
    this.limiter = new FailureLimiter(d.config.tokens.maxFailures, d.config.tokens.failureWindow, () => d.clock().getTime());
    this.confirmations = new JoinConfirmations(d.store);
  }

  /**
   * Checks a bootstrap token as soon as the headers are in, before the body is read: a stranger
   * without a valid token cannot make the server buffer, parse or wait for anything.
   */
  async checkJoinToken(authorization: string | undefined, source: string, sourceKey: string): Promise<JoinToken> {
    const now = this.d.clock();
    const wait = this.limiter.retryAfter(sourceKey);
    if (wait > 0) throw new IssuanceRefusal(429, "rate-limited", `too many failed token attempts from ${sourceKey}; retry in ${Math.ceil(wait / 1000)}s`);
    const presented = /^Bearer\s+(\S+)$/i.exec(authorization ?? "")?.[1];
    if (!presented) {
      this.limiter.fail(sourceKey);
      throw new IssuanceRefusal(401, "token-missing", "send the bootstrap token as 'Authorization: Bearer <token>'");
    }
    const parsed = parseToken(presented);
    const idWait = parsed ? this.limiter.retryAfter(tokenKey(parsed.id)) : 0;
    if (idWait > 0) {
      throw new IssuanceRefusal(429, "rate-limited", `too many failed attempts with bootstrap token ${parsed!.id}; retry in ${Math.ceil(idWait / 1000)}s, or create a new token`);
    }
    const record = parsed ? await this.d.store.getToken(parsed.id) : undefined;
    const check = checkToken(presented, record, now);
    // A spent (or since expired) token whose join the node never confirmed may retry it.
    const retry = !check.ok && (check.code === "token-used" || check.code === "token-expired") ? await this.confirmations.pending(record!.id, now) : undefined;
    if (retry) return { token: record!, retry };
    if (!check.ok) {
      // A known token with the right secret (spent, expired) is a node with stale credentials, not
      // a guess: it counts against that token only, so its neighbours behind one NAT still join.
      if (check.code !== "token-used" && check.code !== "token-expired") this.limiter.fail(sourceKey);
      if (parsed) this.limiter.fail(tokenKey(parsed.id));
      await this.d.store.audit({ time: now, type: "token.rejected", source, reason: check.reason, detail: parsed ? { tokenId: parsed.id, code: check.code } : { code: check.code } });
      throw new IssuanceRefusal(401, check.code, check.reason);
    }
    return { token: check.record };
  }

  async join(r: JoinToken & { body: unknown; source: string; sourceKey: string }): Promise<JoinResponse> {
    const d = this.d;
    const now = d.clock();
    const { token, source, retry } = r;
    const body = JoinRequest.safeParse(r.body);
    if (!body.success) throw new IssuanceRefusal(400, "invalid-request", describeZodError(body.error));
    const jr = body.data;
    const [client, serving] = await Promise.all([parseCsrOrRefuse(jr.csrs.client, "client"), parseCsrOrRefuse(jr.csrs.serving, "serving")]);
    const retryRefused = retry && (await this.confirmations.refusal(retry, jr.nodeName, client.spki));
    if (retryRefused) {
      this.limiter.fail(tokenKey(token.id));
      await d.store.audit({ time: now, type: "token.rejected", source, reason: retryRefused, detail: { tokenId: token.id, code: "token-used" } });
      throw new IssuanceRefusal(401, "token-used", retryRefused);
    }
    const deny = async (rule: string, reason: string): Promise<never> => {
      await d.store.audit({ time: now, type: "join.denied", node: jr.nodeName, source, rule, reason, detail: { tokenId: token.id } });
      d.logger.warn("join denied", { node: jr.nodeName, source, rule, reason });
      throw new IssuanceRefusal(403, "denied", reason, rule);
    };
    // SANs come from what the control plane knows: this join's source address, the token's bound SANs, approvals.
    const sans = await sanContext(d.store, d.policy, jr.nodeName, serving.sans, now, { joinAddress: source, token });
    const decision = evaluate({ nodeName: jr.nodeName, boundNode: token.node, facts: jr.facts, client, serving, sans }, d.policy);
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
    const signer = d.authority.signer;
    const [signedClient, signedServing] = await Promise.all([
      sign(signer, { owner: jr.nodeName, subject, spki: client.spki, keyAlgorithm: client.keyAlgorithm, kind: "client", lifetimeMs: d.config.certificates.maxClientLifetime }, now, d.random),
      sign(signer, { owner: jr.nodeName, subject, spki: serving.spki, keyAlgorithm: serving.keyAlgorithm, kind: "serving", sans: serving.sans, lifetimeMs: d.config.certificates.maxServingLifetime }, now, d.random),
    ]);
    if (retry) {
      await this.confirmations.commitRetry(retry, [signedClient.record, signedServing.record], now, source);
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
      return deny(
        "existing-node",
        `node "${jr.nodeName}" was created by another join while this one ran (first seen ${committed.node.firstSeen.toISOString()}); an unbound bootstrap token cannot take it over: to re-join it, create a token bound to it with 'nodecert token create --node ${jr.nodeName}'`,
      );
    }
    if (committed.code === "token-used") {
      this.limiter.fail(tokenKey(token.id));
      throw new IssuanceRefusal(401, "token-used", `bootstrap token ${token.id} was used up or expired while this request ran: create a new one`);
    }
    await this.confirmations.record(token.id, jr.nodeName, client.spki, signedClient.record.serial, now);
    d.logger.info("node joined", { node: jr.nodeName, source, clientSerial: signedClient.record.serial, servingSerial: signedServing.record.serial });
    return {
      v: PROTOCOL_VERSION,
      nodeName: jr.nodeName,
      certificates: { client: signedClient.chainPem, serving: signedServing.chainPem },
      caBundle: d.authority.trustBundle,
      apiServer: d.config.apiServerUrl,
    };
  }

  /** A renewal by a node that authenticated with its client certificate (`auth`, from node-auth). */
  async renew(r: { auth: NodeAuth; body: unknown; source: string }): Promise<RenewResponse> {
    const d = this.d;
    const now = d.clock();
    const { auth, source } = r;
    const deny = async (status: number, code: string, reason: string, rule?: string, node?: string): Promise<never> => {
      await d.store.audit({ time: now, type: "renew.denied", node, source, rule, reason });
      d.logger.warn("renewal denied", { node, source, rule, reason });
      throw new IssuanceRefusal(status, code, reason, rule);
    };
    if (!auth.ok) {
      if (auth.code === "client-cert-required") return deny(401, "client-cert-required", auth.reason);
      if (auth.code === "not-a-node") return deny(403, "not-a-node", auth.reason);
      const grace = d.config.renewAfterExpiry;
      const late = now.getTime() - auth.notAfter.getTime();
      return deny(
        401,
        "certificate-expired",
        `client certificate expired at ${auth.notAfter.toISOString()} (${formatDuration(late)} ago); ` +
          (grace > 0 ? `this server accepts expired certificates for only ${formatDuration(grace)}` : "this server does not accept expired certificates (renewAfterExpiry is off)") +
          `: re-join the node with a bootstrap token`,
        "expired",
        auth.node,
      );
    }
    const nodeName = auth.node;
    const serial = auth.serial;
    if (auth.expired) d.logger.warn("accepting an expired client certificate within renewAfterExpiry", { node: nodeName, expiredAt: auth.info.notAfter.toISOString() });
    const lineageDenied = (newestSerial: string | undefined, confirmed: string | undefined) =>
      deny(
        403,
        "denied",
        `client certificate ${serial} is neither the newest issued to node "${nodeName}" (${newestSerial ?? "none"}) nor the last one it used (${confirmed ?? "none"}): ` +
          `an older or copied certificate cannot renew; re-join the node with a bootstrap token`,
        "lineage",
        nodeName,
      );
    const unknown = () => deny(403, "denied", `node "${nodeName}" is not known to this server: join it with a bootstrap token`, "known-node", nodeName);
    const evicted = (at: Date) => deny(403, "denied", `node "${nodeName}" was evicted at ${at.toISOString()}; it can no longer renew`, "evicted", nodeName);
    const standing = await nodeStanding(d.store, nodeName, serial);
    if (!standing.ok) {
      if (standing.code === "known-node") return unknown();
      if (standing.code === "evicted") return evicted(standing.at);
      return lineageDenied(standing.newest, standing.confirmed);
    }
    const node = standing.record;
    const body = RenewRequest.safeParse(r.body);
    if (!body.success) throw new IssuanceRefusal(400, "invalid-request", describeZodError(body.error));
    const rr = body.data;
    const [client, serving] = await Promise.all([
      rr.csrs.client ? parseCsrOrRefuse(rr.csrs.client, "client") : undefined,
      rr.csrs.serving ? parseCsrOrRefuse(rr.csrs.serving, "serving") : undefined,
    ]);
    const sans = serving ? await sanContext(d.store, d.policy, nodeName, serving.sans, now, { joinAddress: node.joinAddress, connectionAddress: source }) : undefined;
    const decision = evaluate({ nodeName, facts: rr.facts, client, serving, sans }, d.policy);
    if (!decision.allowed) return deny(403, "denied", decision.reason, decision.rule, nodeName);
    const subject = nodeSubject(nodeName);
    const signer = d.authority.signer;
    const [signedClient, signedServing] = await Promise.all([
      client ? sign(signer, { owner: nodeName, subject, spki: client.spki, keyAlgorithm: client.keyAlgorithm, kind: "client", lifetimeMs: d.config.certificates.maxClientLifetime }, now, d.random) : undefined,
      serving ? sign(signer, { owner: nodeName, subject, spki: serving.spki, keyAlgorithm: serving.keyAlgorithm, kind: "serving", sans: serving.sans, lifetimeMs: d.config.certificates.maxServingLifetime }, now, d.random) : undefined,
    ]);
    const records = [signedClient?.record, signedServing?.record].filter((x) => x !== undefined);
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
    if (committed.code === "evicted") return evicted(committed.at);
    if (committed.code === "unknown-node") return unknown();
    d.logger.info("node renewed", { node: nodeName, source, presented: serial, clientSerial: signedClient?.record.serial, servingSerial: signedServing?.record.serial });
    return {
      v: PROTOCOL_VERSION,
      nodeName,
      certificates: { client: signedClient?.chainPem, serving: signedServing?.chainPem },
      caBundle: d.authority.trustBundle,
    };
  }
}

async function parseCsrOrRefuse(pem: string, kind: string): Promise<ParsedCsr> {
  try {
    return await parseCsrFast(pem);
  } catch (e) {
    throw new IssuanceRefusal(400, "invalid-csr", `${kind} CSR: ${(e as Error).message}`);
  }
}
