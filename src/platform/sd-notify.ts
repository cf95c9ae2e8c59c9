// Readiness and status for systemd (Type=notify). Node cannot send on an AF_UNIX datagram socket,
// so this runs `systemd-notify` (no shell, with a timeout). Without NOTIFY_SOCKET (not started by
// systemd as Type=notify) it does nothing. It never throws: the result says what happened, for
// the caller to log.
//
// The unit needs NotifyAccess=all, since the sender is a child of the main process. systemd-notify
// (without --no-block) waits until PID 1 has processed the message (BARRIER=1), so the message is
// attributed to the unit even though the sender exits right after.
import { execFile } from "node:child_process";

export interface NotifyState {
  /** READY=1: start-up finished (the agent: client certificate valid; the server: listening). */
  ready?: boolean;
  /** STATUS=...: one line shown by `systemctl status`. */
  status?: string;
  /** STOPPING=1: shutting down. */
  stopping?: boolean;
}

export interface NotifyResult {
  outcome: "sent" | "skipped" | "failed";
  detail?: string;
}

export interface NotifyOptions {
  env?: NodeJS.ProcessEnv;
  /** The systemd-notify barrier waits up to 5 s for PID 1; give it room. */
  timeoutMs?: number;
  command?: string;
}

/** STATUS= is one line of a newline-separated assignment list: a newline would inject a variable. */
export function sanitizeStatus(s: string): string {
  return s.replace(/[\r\n\0]+/g, " ").trim().slice(0, 1000);
}

export function notifyArgs(state: NotifyState): string[] {
  const args: string[] = [];
  if (state.ready) args.push("--ready");
  if (state.status !== undefined) args.push(`--status=${sanitizeStatus(state.status)}`);
  // systemd 252's systemd-notify has no --stopping; a variable argument works in every version.
  if (state.stopping) args.push("STOPPING=1");
  return args;
}

export function notifySystemd(state: NotifyState, o: NotifyOptions = {}): Promise<NotifyResult> {
  const env = o.env ?? process.env;
  if (!env.NOTIFY_SOCKET) return Promise.resolve({ outcome: "skipped", detail: "NOTIFY_SOCKET is not set (not run by systemd as Type=notify)" });
  const args = notifyArgs(state);
  if (!args.length) return Promise.resolve({ outcome: "skipped", detail: "nothing to notify" });
  const command = o.command ?? "systemd-notify";
  const timeoutMs = o.timeoutMs ?? 10_000;
  return new Promise((resolve) => {
    try {
      execFile(command, args, { env, timeout: timeoutMs, killSignal: "SIGKILL", windowsHide: true }, (err, stdout, stderr) => {
        const output = `${stdout}${stderr}`.trim().slice(0, 500);
        if (!err) return resolve({ outcome: "sent", detail: args.join(" ") });
        const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: number | string };
        if (e.code === "ENOENT") return resolve({ outcome: "failed", detail: `${command} is not installed` });
        if (e.killed) return resolve({ outcome: "failed", detail: `${command} timed out after ${timeoutMs} ms` });
        resolve({ outcome: "failed", detail: `${command} exited ${typeof e.code === "number" ? e.code : e.code ?? "abnormally"}: ${output || e.message}` });
      });
    } catch (e) {
      resolve({ outcome: "failed", detail: `cannot run ${command}: ${(e as Error).message}` });
    }
  });
}
