// Reload hooks run after a successful install. A failure is logged and counted; it never rolls
// back a valid new certificate.
import { execFile } from "node:child_process";
import { promises as fs } from "node:fs";
import type { Hook } from "../config/agent.js";
import type { CertKind } from "../pki/csr.js";
import type { Logger } from "../platform/log.js";

export interface HookResult {
  hook: string;
  outcome: "ok" | "skipped" | "failed";
  detail?: string;
}

export type Exec = (file: string, args: string[], timeoutMs: number, env?: NodeJS.ProcessEnv) => Promise<{ code: number; output: string }>;

export const execCommand: Exec = (file, args, timeoutMs, env) =>
  new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, killSignal: "SIGKILL", env: { ...process.env, ...(env ?? {}) } }, (err, stdout, stderr) => {
      const output = (stdout + stderr).trim().slice(0, 500);
      if (!err) return resolve({ code: 0, output });
      const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: number | string };
      if (e.killed) return resolve({ code: -1, output: `timed out after ${timeoutMs} ms` });
      resolve({ code: typeof e.code === "number" ? e.code : 127, output: output || e.message });
    });
  });

export function hookName(h: Hook): string {
  if (h.type === "systemd") return `systemd:${h.unit}`;
  if (h.type === "signal") return `signal:${h.signal}:${h.pidFile}`;
  return `exec:${h.argv[0]}`;
}

export async function runHooks(hooks: Hook[], kinds: CertKind[], o: { logger: Logger; exec?: Exec; onFailure?: (hook: string) => void }): Promise<HookResult[]> {
  const exec = o.exec ?? execCommand;
  const results: HookResult[] = [];
  for (const h of hooks) {
    if (!h.on.some((k) => kinds.includes(k))) continue;
    const name = hookName(h);
    let r: HookResult;
    try {
      r = await runOne(h, kinds, exec);
    } catch (e) {
      r = { hook: name, outcome: "failed", detail: (e as Error).message };
    }
    results.push(r);
    if (r.outcome === "failed") {
      o.onFailure?.(name);
      o.logger.error("reload hook failed; the new certificate stays installed", { hook: name, detail: r.detail });
    } else {
      o.logger.info("reload hook", { hook: name, outcome: r.outcome, detail: r.detail });
    }
  }
  return results;
}

async function runOne(h: Hook, kinds: CertKind[], exec: Exec): Promise<HookResult> {
  const name = hookName(h);
  if (h.type === "systemd") {
    const unit = h.unit.includes(".") ? h.unit : `${h.unit}.service`;
    if (h.ifExists) {
      const probe = await exec("systemctl", ["cat", "--", unit], h.timeout);
      if (probe.code !== 0) return { hook: name, outcome: "skipped", detail: `${unit} is not installed` };
    }
    const r = await exec("systemctl", ["restart", "--", unit], h.timeout);
    return r.code === 0 ? { hook: name, outcome: "ok" } : { hook: name, outcome: "failed", detail: `systemctl restart ${unit}: ${r.output}` };
  }
  if (h.type === "signal") {
    const pid = Number((await fs.readFile(h.pidFile, "utf8")).trim());
    if (!Number.isInteger(pid) || pid <= 1) return { hook: name, outcome: "failed", detail: `${h.pidFile} does not hold a usable pid` };
    process.kill(pid, h.signal as NodeJS.Signals);
    return { hook: name, outcome: "ok", detail: `sent ${h.signal} to ${pid}` };
  }
  const r = await exec(h.argv[0], h.argv.slice(1), h.timeout, { NODECERT_RENEWED: kinds.join(",") });
  return r.code === 0 ? { hook: name, outcome: "ok" } : { hook: name, outcome: "failed", detail: `exit ${r.code}: ${r.output}` };
}
