// The renewal request: fresh (or reused) keys and CSRs for the kinds asked, POST /v1/renew over
// mTLS with the current client certificate, and verification of what came back. Returns the
// install plan; installing it is the node store's job, deciding when is the renewer's.
import { serverFor } from "./servers.js";
import type { AgentConfig } from "../config/agent.js";
import type { Logger } from "../platform/log.js";
import type { CertKind } from "../pki/csr.js";
import { assertKeyAlgorithmAllowed } from "../crypto/process.js";
import type { KeyAlgorithm } from "../pki/keys.js";
import { privateKeyBlock } from "../pki/pem.js";
import { verifyNodeCertificate } from "../pki/verify.js";
import { PROTOCOL_VERSION, RenewResponse, type RenewRequest } from "../protocol/messages.js";
import { describeErrorBody, requestJson } from "../platform/https-client.js";
import type { Identity } from "./identity.js";
import type { InstallPlan, NodeStore } from "./node-store.js";

export class RenewError extends Error {}

export interface RenewClientInput {
  config: AgentConfig;
  store: NodeStore;
  logger: Logger;
  identity: Identity;
  keyAlgorithm: KeyAlgorithm;
  now: () => Date;
  /** Consecutive failures so far: with a list of servers, each retry asks the next one. */
  attempt?: number;
}

export async function requestRenewal(i: RenewClientInput, kinds: CertKind[]): Promise<InstallPlan> {
  const { config, store, identity } = i;
  const state = await store.read();
  const clientPem = await store.readCurrentPem("client");
  if (!state || !clientPem) {
    throw new RenewError("the node has no client certificate and no bootstrap token: put a token in the configured tokenFile, or run 'nodecert join'");
  }
  const trust = await store.readTrustBundle();
  if (trust === undefined) throw new RenewError(`no trust bundle is installed at ${store.layout.caFile}: run 'nodecert join' again`);
  const keys: Partial<Record<CertKind, { keyPem: string; csr: string }>> = {};
  // Loaded on first use: key generation and CSRs bring the X.509 library, which an agent that
  // only watches its certificates between renewals does not need resident.
  const [{ createNodeCsr }, { exportPrivateKeyPem, generateKeyPair, importPrivateKeyPem }] = await Promise.all([import("../pki/csr.js"), import("../pki/keys.js")]);
  for (const kind of kinds) {
    const existing = config.reuseKey ? privateKeyBlock((await store.readCurrentPem(kind)) ?? "") : undefined;
    const alg = i.keyAlgorithm;
    assertKeyAlgorithmAllowed(alg);
    const reusable = existing && (await importPrivateKeyPem(existing)).algorithm === alg ? existing : undefined;
    const pair = reusable ? await importPrivateKeyPem(reusable) : await generateKeyPair(alg);
    keys[kind] = {
      keyPem: reusable ?? (await exportPrivateKeyPem(pair.privateKey)),
      csr: await createNodeCsr({ kind, nodeName: state.nodeName, keys: pair, sans: kind === "serving" ? identity.servingSans : undefined }),
    };
  }
  const server = serverFor(config.server ?? state.server, i.attempt)!;
  const body: RenewRequest = { v: PROTOCOL_VERSION, facts: identity.facts, csrs: { client: keys.client?.csr, serving: keys.serving?.csr } };
  const res = await requestJson(new URL("/v1/renew", server).toString(), { body, tls: { ca: trust, cert: clientPem, key: clientPem, controlPlane: true } });
  if (res.status !== 200) throw new RenewError(`renewal refused by ${server}: ${describeErrorBody(res.status, res.body)}`);
  const parsed = RenewResponse.safeParse(res.body);
  if (!parsed.success) throw new RenewError(`${server} sent a renewal response that does not match the protocol; nothing was installed`);
  const now = i.now();
  const pairs: InstallPlan["pairs"] = {};
  for (const kind of kinds) {
    const chainPem = parsed.data.certificates[kind];
    if (!chainPem) throw new RenewError(`${server} did not return the ${kind} certificate; nothing was installed`);
    verifyNodeCertificate(chainPem, keys[kind]!.keyPem, trust, { kind, nodeName: state.nodeName, sans: kind === "serving" ? identity.servingSans : undefined, now });
    pairs[kind] = { chainPem, keyPem: keys[kind]!.keyPem };
  }
  return { nodeName: state.nodeName, server: state.server, caPin: state.caPin, apiServer: state.apiServer, caBundle: trust, pairs, at: now.toISOString() };
}
