// Joining the cluster: pin-checked CA fetch, local keys, CSRs, verification, install.
import { CaBundleResponse, JoinResponse, PROTOCOL_VERSION, type JoinRequest } from "../protocol/messages.js";
import { certificatePin, normalizePin } from "../pki/pin.js";
import { splitCertificates } from "../pki/pem.js";
import type { KeyAlgorithm } from "../pki/keys.js";
import { clearJoinKeys, joinKeys } from "./join-keys.js";
import { createNodeCsr } from "../pki/csr.js";
import { assertKeyAlgorithmAllowed } from "../crypto/process.js";
import { verifyNodeCertificate } from "../pki/verify.js";
import { describeErrorBody, RequestFailed, requestJson } from "../platform/https-client.js";

/** OpenSSL's verdicts for a chain that does not lead to the anchor. */
const CHAIN_ERRORS = new Set(["SELF_SIGNED_CERT_IN_CHAIN", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "UNABLE_TO_GET_ISSUER_CERT", "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "DEPTH_ZERO_SELF_SIGNED_CERT", "CERT_SIGNATURE_FAILURE"]);
import type { Identity } from "./identity.js";
import type { NodeLayout } from "./layout.js";
import { applyInstall } from "./apply.js";
import { clearJoinError, type AgentState } from "./state.js";
import type { Logger } from "../platform/log.js";
import { assertClockInSync } from "./clock-skew.js";

export class JoinError extends Error {}

export interface JoinOptions {
  server: string;
  token: string;
  caCertHash: string;
  layout: NodeLayout;
  identity: Identity;
  keyAlgorithm: KeyAlgorithm;
  now: () => Date;
  logger: Logger;
}

/**
 * Fetches the CA bundle without trust and returns only the certificate that matches the pin: the
 * rest of an unauthenticated bundle is attacker-controlled until TLS to the pinned CA succeeds.
 */
export async function fetchPinnedBundle(server: string, pin: string): Promise<string> {
  return (await fetchPinnedCa(server, pin)).ca;
}

/** The pinned CA and the server's clock (its Date header), for the clock check before a join. */
export async function fetchPinnedCa(server: string, pin: string): Promise<{ ca: string; serverDate?: string }> {
  const want = normalizePin(pin);
  const res = await requestJson(new URL("/v1/ca", server).toString(), { tls: { insecure: true } });
  if (res.status !== 200) throw new JoinError(`cannot fetch the CA bundle from ${server}: ${describeErrorBody(res.status, res.body)}`);
  const parsed = CaBundleResponse.safeParse(res.body);
  if (!parsed.success) throw new JoinError(`${server} answered /v1/ca with something that is not a nodecert CA bundle`);
  const certs = splitCertificates(parsed.data.caBundle);
  const pins = certs.map((c) => certificatePin(c));
  if (!pins.includes(want)) {
    throw new JoinError(
      `CA pin mismatch: expected ${want}, the server at ${server} presented ${pins.join(", ")}. ` +
        `Check --ca-cert-hash (printed by 'nodecert server init') and that --server points at your control plane; refusing to trust it`,
    );
  }
  return { ca: certs[pins.indexOf(want)], serverDate: res.date };
}

export async function join(o: JoinOptions): Promise<AgentState> {
  const log = o.logger;
  assertKeyAlgorithmAllowed(o.keyAlgorithm);
  const { ca: pinnedCa, serverDate } = await fetchPinnedCa(o.server, o.caCertHash);
  log.info("CA bundle matches pin", { server: o.server, caPin: normalizePin(o.caCertHash) });
  assertClockInSync(o.server, serverDate, o.now());
  const { nodeName, facts, servingSans } = o.identity;
  const kept = await joinKeys(o.layout, nodeName, o.keyAlgorithm);
  const [clientKeys, servingKeys] = [kept.client, kept.serving];
  const request: JoinRequest = {
    v: PROTOCOL_VERSION,
    nodeName,
    facts,
    csrs: {
      client: await createNodeCsr({ kind: "client", nodeName, keys: clientKeys }),
      serving: await createNodeCsr({ kind: "serving", nodeName, keys: servingKeys, sans: servingSans }),
    },
  };
  const res = await requestJson(new URL("/v1/join", o.server).toString(), {
    body: request,
    headers: { authorization: `Bearer ${o.token}` },
    // The token goes only to the control plane: a node's certificate from the same CA, standing
    // in at this address, fails inside the handshake (controlPlane), before anything is sent.
    tls: { ca: pinnedCa, controlPlane: true },
  }).catch((e: Error) => {
    if (e instanceof RequestFailed && e.code && CHAIN_ERRORS.has(e.code)) {
      throw new JoinError(
        `${e.message}: the server's TLS certificate does not chain to the pinned CA ${normalizePin(o.caCertHash)}, so the token was not sent. ` +
          `During a CA rotation a new CA's pin is valid only once the new CA signs; 'nodecert ca status' on the control plane lists the pins valid for joins now`,
      );
    }
    throw e;
  });
  if (res.status !== 200) throw new JoinError(`join refused by ${o.server}: ${describeErrorBody(res.status, res.body)}`);
  const parsed = JoinResponse.safeParse(res.body);
  if (!parsed.success) throw new JoinError(`${o.server} sent a join response that does not match the protocol; nothing was installed`);
  const jr = parsed.data;
  // The response came over TLS verified against the pinned CA alone, so its bundle (which may hold
  // a second CA during a CA rotation) is the server's word; it must still contain the pinned CA.
  const pinned = normalizePin(o.caCertHash);
  if (!splitCertificates(jr.caBundle).some((c) => certificatePin(c) === pinned)) {
    throw new JoinError("the join response's CA bundle no longer contains the pinned CA; nothing was installed");
  }
  const bundle = jr.caBundle;
  const now = o.now();
  const [clientKeyPem, servingKeyPem] = [kept.clientPem, kept.servingPem];
  verifyNodeCertificate(jr.certificates.client, clientKeyPem, bundle, { kind: "client", nodeName, now });
  verifyNodeCertificate(jr.certificates.serving, servingKeyPem, bundle, { kind: "serving", nodeName, sans: servingSans, now });
  const state = await applyInstall(
    o.layout,
    {
      nodeName,
      server: o.server,
      caPin: pinned,
      apiServer: jr.apiServer,
      caBundle: jr.caBundle,
      pairs: { client: { chainPem: jr.certificates.client, keyPem: clientKeyPem }, serving: { chainPem: jr.certificates.serving, keyPem: servingKeyPem } },
      at: now.toISOString(),
      joined: true,
    },
    now,
  );
  await clearJoinError(o.layout).catch(() => undefined);
  await clearJoinKeys(o.layout).catch(() => undefined);
  log.info("joined", { node: nodeName, server: o.server, clientSerial: state.certificates.client?.serial, servingSerial: state.certificates.serving?.serial });
  return state;
}
