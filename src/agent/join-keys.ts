// The keys of a join in progress, kept (0600, in the state directory) until its result is
// installed: a join the node could not finish is retried with the same keys, which is what lets
// the server accept it again with the same token (server/join-confirmation). Removed after install.
import { promises as fs } from "node:fs";
import path from "node:path";
import type { NodeLayout } from "./layout.js";
import { exportPrivateKeyPem, generateKeyPair, importPrivateKeyPem, type KeyAlgorithm, type KeyPair } from "../pki/keys.js";
import { ensureDir, writeFileAtomic } from "../platform/files.js";

export const joinKeysFile = (layout: NodeLayout) => path.join(layout.stateDir, "join-keys.json");

export interface JoinKeys {
  client: KeyPair;
  serving: KeyPair;
  clientPem: string;
  servingPem: string;
}

/** The kept keys of an unfinished join for `node` with `alg`, else new ones (kept before any CSR leaves). */
export async function joinKeys(layout: NodeLayout, node: string, alg: KeyAlgorithm): Promise<JoinKeys> {
  const file = joinKeysFile(layout);
  try {
    const kept = JSON.parse(await fs.readFile(file, "utf8")) as { node?: string; algorithm?: string; client?: string; serving?: string };
    if (kept.node === node && kept.algorithm === alg && kept.client && kept.serving) {
      const [client, serving] = await Promise.all([importPrivateKeyPem(kept.client), importPrivateKeyPem(kept.serving)]);
      if (client.algorithm === alg && serving.algorithm === alg) return { client, serving, clientPem: kept.client, servingPem: kept.serving };
    }
  } catch {
    /* none kept, or unreadable: new keys */
  }
  const [client, serving] = await Promise.all([generateKeyPair(alg), generateKeyPair(alg)]);
  const [clientPem, servingPem] = await Promise.all([exportPrivateKeyPem(client.privateKey), exportPrivateKeyPem(serving.privateKey)]);
  // Best effort: a disk that cannot keep them only costs the retry (a new token then).
  await ensureDir(layout.stateDir, 0o700)
    .then(() => writeFileAtomic(file, JSON.stringify({ node, algorithm: alg, client: clientPem, serving: servingPem }), 0o600))
    .catch(() => undefined);
  return { client, serving, clientPem, servingPem };
}

export async function clearJoinKeys(layout: NodeLayout): Promise<void> {
  await fs.rm(joinKeysFile(layout), { force: true });
}
