// The local control socket (unix, 0600) that `nodecert renew` talks to, and its client.
import { promises as fs } from "node:fs";
import http from "node:http";
import * as z from "zod";
import type { Renewer, RenewOutcome } from "../renewer.js";
import type { CertKind } from "../../pki/csr.js";
import { close, createLocalServer, listen } from "../../platform/local-http.js";

export const ControlRenewRequest = z.object({ kinds: z.array(z.enum(["client", "serving"])).min(1), force: z.boolean().default(false) }).strict();

export interface ControlServer {
  close(): Promise<void>;
}

export async function startControlSocket(socketPath: string, renewer: Renewer): Promise<ControlServer> {
  await fs.rm(socketPath, { force: true }); // a stale socket from a killed agent
  const server = createLocalServer(
    {
      "POST /v1/renew": async (_req, raw) => {
        const body = ControlRenewRequest.safeParse(raw);
        if (!body.success) return { status: 400, body: { error: body.error.message } };
        return { body: await renewer.renew(body.data.kinds as CertKind[], { force: body.data.force }) };
      },
      "GET /v1/status": async () => ({ body: { decisions: await renewer.evaluate(false), consecutiveFailures: renewer.consecutiveFailures, lastError: renewer.lastError, nextAttemptAt: renewer.nextAttemptAt } }),
    },
    { bodyLimit: 4096 },
  );
  await listen(server, { path: socketPath });
  await fs.chmod(socketPath, 0o600);
  return { close: () => close(server) };
}

/** Asks a running agent to renew; resolves undefined when no agent listens on the socket. */
export function requestRenewal(socketPath: string, kinds: CertKind[], force: boolean): Promise<RenewOutcome | undefined> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify({ kinds, force });
    const req = http.request({ socketPath, path: "/v1/renew", method: "POST", headers: { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } }, (res) => {
      let data = "";
      res.on("data", (c) => (data += c));
      res.on("end", () => {
        if (res.statusCode !== 200) return reject(new Error(`the agent on ${socketPath} answered ${res.statusCode}: ${data.slice(0, 500)}`));
        try {
          resolve(JSON.parse(data) as RenewOutcome);
        } catch {
          // Something else listens on the socket, or the agent died mid-answer.
          reject(new Error(`the agent on ${socketPath} sent an answer that is not JSON (${JSON.stringify(data.slice(0, 80))}); is another program listening there? Check 'nodecert status' and restart the agent`));
        }
      });
    });
    req.on("error", (e: NodeJS.ErrnoException) => (e.code === "ENOENT" || e.code === "ECONNREFUSED" ? resolve(undefined) : reject(e)));
    req.end(payload);
  });
}
