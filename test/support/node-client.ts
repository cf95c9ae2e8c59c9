// A node speaking the wire protocol directly (join, renew, open the channel) with keys it made
// itself, so tests can hold, copy and replay certificates the way an attacker with a disk image
// or a backup would.
import WebSocket from "ws";
import { requestJson, type JsonResponse } from "../../src/platform/https-client.js";
import { createNodeCsr } from "../../src/pki/csr.js";
import { exportPrivateKeyPem, generateKeyPair } from "../../src/pki/keys.js";
import { certificateInfo } from "../../src/pki/certificate-info.js";
import { PROTOCOL_VERSION } from "../../src/protocol/messages.js";
import { CHANNEL_PATH } from "../../src/server/fleet/hub.js";

export interface NodeCredential {
  /** Certificate chain and private key in one PEM, like kubelet-client-current.pem. */
  pem: string;
  serial: string;
}

export const nodeFacts = (name: string) => ({ hostname: name, addresses: ["127.0.0.1"], agentVersion: "test" });

async function csrs(name: string) {
  const client = await generateKeyPair("ECDSA-P256");
  const serving = await generateKeyPair("ECDSA-P256");
  return {
    clientKeyPem: await exportPrivateKeyPem(client.privateKey),
    body: {
      client: await createNodeCsr({ kind: "client", nodeName: name, keys: client }),
      serving: await createNodeCsr({ kind: "serving", nodeName: name, keys: serving, sans: [name, "127.0.0.1"] }),
    },
  };
}

const credential = (chainPem: string, keyPem: string): NodeCredential => ({ pem: chainPem.trimEnd() + "\n" + keyPem, serial: certificateInfo(chainPem).serial });

export async function joinRaw(server: { url: string; authority: { trustBundle: string } }, name: string, token: string): Promise<JsonResponse & { credential?: NodeCredential }> {
  const c = await csrs(name);
  const res = await requestJson(`${server.url}/v1/join`, {
    body: { v: PROTOCOL_VERSION, nodeName: name, facts: nodeFacts(name), csrs: c.body },
    headers: { authorization: `Bearer ${token}` },
    tls: { ca: server.authority.trustBundle },
  });
  const client = (res.body as { certificates?: { client?: string } })?.certificates?.client;
  return { ...res, credential: res.status === 200 && client ? credential(client, c.clientKeyPem) : undefined };
}

export async function renewRaw(server: { url: string; authority: { trustBundle: string } }, name: string, cred: NodeCredential): Promise<JsonResponse & { credential?: NodeCredential }> {
  const c = await csrs(name);
  const res = await requestJson(`${server.url}/v1/renew`, {
    body: { v: PROTOCOL_VERSION, facts: nodeFacts(name), csrs: { client: c.body.client } },
    tls: { ca: server.authority.trustBundle, cert: cred.pem, key: cred.pem },
  });
  const client = (res.body as { certificates?: { client?: string } })?.certificates?.client;
  return { ...res, credential: res.status === 200 && client ? credential(client, c.clientKeyPem) : undefined };
}

/** Opens the fleet channel with a credential: "open" with the socket, or the HTTP status it was refused with. */
export function openChannel(server: { port: number; authority: { trustBundle: string } }, cred: NodeCredential, host = "127.0.0.1"): Promise<{ ws?: WebSocket; status: number; body: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`wss://${host.includes(":") ? `[${host}]` : host}:${server.port}${CHANNEL_PATH}`, { ca: server.authority.trustBundle, cert: cred.pem, key: cred.pem, minVersion: "TLSv1.3" });
    ws.on("unexpected-response", (_req, res) => {
      let b = "";
      res.on("data", (d) => (b += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: b }));
    });
    ws.once("open", () => resolve({ ws, status: 101, body: "" }));
    ws.on("error", () => resolve({ status: 0, body: "" }));
  });
}
