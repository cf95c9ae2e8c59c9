// Talks to the control plane's admin endpoints with the admin certificate from `server init`.
import { promises as fs } from "node:fs";
import { serverPaths } from "../server/paths.js";
import { describeErrorBody, requestJson } from "../platform/https-client.js";

export async function adminGet(dir: string, route: string, serverUrl?: string): Promise<unknown> {
  return adminRequest(dir, route, undefined, serverUrl);
}

export async function adminRequest(dir: string, route: string, body: unknown, serverUrl?: string): Promise<unknown> {
  const p = serverPaths(dir);
  let cert: string, key: string, ca: string, url: string;
  try {
    [cert, key, ca] = await Promise.all([fs.readFile(p.adminCert, "utf8"), fs.readFile(p.adminKey, "utf8"), fs.readFile(p.adminCa, "utf8")]);
    url = serverUrl ?? (await fs.readFile(p.adminServerUrl, "utf8")).trim();
  } catch (e) {
    throw new Error(`cannot read admin credentials in ${p.adminDir} (${(e as NodeJS.ErrnoException).code}): run this on the control plane with --dir pointing at the server directory`, { cause: e });
  }
  const res = await requestJson(new URL(route, url).toString(), { body, tls: { ca, cert, key, controlPlane: true } });
  if (res.status !== 200) throw new Error(`${route}: ${describeErrorBody(res.status, res.body)}`);
  return res.body;
}
