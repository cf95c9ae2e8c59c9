// `nodecert ca rotate|status|advance` (admin, mTLS): CA rotation in phases.
import { promises as fs } from "node:fs";
import type { CliEnv } from "./env.js";
import { adminGet, adminRequest } from "./admin-client.js";
import type { CaRotationStatus } from "../server/fleet/ca-rotation.js";
import { escapeTerminal } from "../platform/text.js";

export interface CaOptions {
  dir: string;
  server?: string;
}
export interface CaRotateOptions extends CaOptions {
  caCert?: string;
  caKey?: string;
  wait?: boolean;
  timeout?: string;
  interval?: string;
}
export interface CaAdvanceOptions extends CaOptions {
  force?: boolean;
}

const pins = (s: CaRotationStatus) =>
  `pins valid for 'nodecert join --ca-cert-hash' now (the server's current chain verified against each CA):\n` +
  s.joinPins.map((p) => `  ${p.pin}  ${p.valid ? "valid" : "not valid"}  ${escapeTerminal(p.subject)}${p.valid ? "" : ` (${escapeTerminal(p.problem ?? "")})`}`).join("\n") +
  "\n";

function printCa(env: CliEnv, s: CaRotationStatus): void {
  const r = s.rotation;
  if (!r) return void env.stdout.write(`no CA rotation has run; the trust bundle holds ${s.bundleCertificates} CA certificate(s)\n` + pins(s));
  env.stdout.write(
    `CA rotation ${r.id}: phase ${r.phase} (started ${r.startedAt}${r.finishedAt ? `, finished ${r.finishedAt}` : ""})\n` +
      `  old CA ${r.oldFingerprint.slice(0, 16)}…  new CA ${r.newFingerprint.slice(0, 16)}…  trust bundle: ${s.bundleCertificates} CA certificate(s)\n` +
      (r.campaignId ? `  re-issue campaign: ${r.campaignId}\n` : "") +
      (s.blockers.length ? `  blocking the next phase:\n${s.blockers.map((b) => `    - ${escapeTerminal(b)}`).join("\n")}\n` : r.phase !== "done" ? "  nothing blocks the next phase\n" : "") +
      (r.forced.length ? `  forced: ${escapeTerminal(r.forced.join(" | "))}\n` : "") +
      pins(s),
  );
}

export async function caRotate(env: CliEnv, o: CaRotateOptions): Promise<void> {
  const body = { caCertPem: o.caCert ? await fs.readFile(o.caCert, "utf8") : undefined, caKeyPem: o.caKey ? await fs.readFile(o.caKey, "utf8") : undefined };
  const started = (await adminRequest(o.dir, "/v1/admin/ca/rotate", body, o.server)) as CaRotationStatus;
  printCa(env, started);
  if (o.wait) {
    const [{ waitWithProgress }, { caRotationProgress }, { parseDuration }] = await Promise.all([import("./wait-progress.js"), import("./rotate-wait.js"), import("../config/duration.js")]);
    const id = started.rotation?.id;
    await waitWithProgress(env, `CA rotation ${id ?? ""}`.trim(), async () => caRotationProgress((await adminGet(o.dir, "/v1/admin/ca", o.server)) as CaRotationStatus, id), {
      intervalMs: parseDuration(o.interval ?? "1s"),
      timeoutMs: o.timeout ? parseDuration(o.timeout) : undefined,
    });
  }
}

export async function caStatus(env: CliEnv, o: CaOptions): Promise<void> {
  printCa(env, (await adminGet(o.dir, "/v1/admin/ca", o.server)) as CaRotationStatus);
}

export async function caAdvance(env: CliEnv, o: CaAdvanceOptions): Promise<void> {
  printCa(env, (await adminRequest(o.dir, "/v1/admin/ca/advance", { force: !!o.force }, o.server)) as CaRotationStatus);
}
