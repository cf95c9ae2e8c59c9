// The dashboard's only way to the control plane: the admin API over mTLS with the admin
// certificate from `server init`, exactly as the admin verbs reach it (`nodecert nodes`, `rotate`,
// `ca advance`). The credentials are read again for every request: a CA rotation re-issues the
// admin certificate and rewrites the admin's ca.crt while the dashboard runs.
import { promises as fs } from "node:fs";
import { serverPaths } from "../../server/paths.js";
import { requestJson } from "../../platform/https-client.js";

export interface AdminResponse {
  status: number;
  body: unknown;
}

export interface ControlPlane {
  readonly url: string;
  get(route: string): Promise<AdminResponse>;
  /** A GET whose JSON body is returned as text, unparsed (relayed as it came). */
  getText(route: string): Promise<{ status: number; text: string }>;
  post(route: string, body: unknown): Promise<AdminResponse>;
}

/** Larger than the CLI's 1 MiB: the fleet view of 10,000 nodes is several MiB of JSON. */
const MAX_RESPONSE_BYTES = 256 * 1024 * 1024;

export async function adminControlPlane(dir: string, serverUrl?: string): Promise<ControlPlane> {
  const p = serverPaths(dir);
  const credentials = async () => {
    try {
      const [cert, key, ca] = await Promise.all([fs.readFile(p.adminCert, "utf8"), fs.readFile(p.adminKey, "utf8"), fs.readFile(p.adminCa, "utf8")]);
      return { cert, key, ca, controlPlane: true };
    } catch (e) {
      throw new Error(`cannot read admin credentials in ${p.adminDir} (${(e as NodeJS.ErrnoException).code}): run the dashboard on the control plane with --dir pointing at the server directory`);
    }
  };
  await credentials(); // fail at start, not at the first page load
  let url = serverUrl;
  if (!url) {
    try {
      url = (await fs.readFile(p.adminServerUrl, "utf8")).trim();
    } catch (e) {
      throw new Error(`cannot read the control plane URL from ${p.adminServerUrl} (${(e as NodeJS.ErrnoException).code}): pass --server https://host:port`);
    }
  }
  const base = url;
  const call = async (route: string, body?: unknown): Promise<AdminResponse> => {
    const res = await requestJson(new URL(route, base).toString(), { method: body === undefined ? "GET" : "POST", body, tls: await credentials(), maxBytes: MAX_RESPONSE_BYTES, timeoutMs: 30_000 });
    return { status: res.status, body: res.body };
  };
  const getText = async (route: string) => {
    const res = await requestJson(new URL(route, base).toString(), { method: "GET", tls: await credentials(), maxBytes: MAX_RESPONSE_BYTES, timeoutMs: 30_000, textBody: true });
    return { status: res.status, text: res.body as string };
  };
  return { url: base, get: (route) => call(route), getText, post: (route, body) => call(route, body) };
}
