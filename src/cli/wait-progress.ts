// `--wait` for long operations (`nodecert rotate`, `nodecert ca rotate`): polls the control plane
// and shows progress as it changes (a bar redrawn in place on a terminal, one line per change
// otherwise, for logs and scripts), then ends with an exit code an operator's script can branch on.
import type { CliEnv } from "./env.js";

/** Exit codes of `--wait`: code decides on these, the last line says why. */
export const WAIT_EXIT = { done: 0, error: 1, failed: 2, cancelled: 3, timeout: 4 } as const;
export type WaitOutcome = keyof typeof WAIT_EXIT;

export interface Progress {
  /** Units finished (nodes done, or phases completed). */
  done: number;
  total: number;
  /** One line of detail: counts, phase, blockers. */
  detail: string;
  /** Set when the operation is over. */
  outcome?: Exclude<WaitOutcome, "timeout" | "error">;
}

export interface WaitOptions {
  intervalMs: number;
  timeoutMs?: number;
  /** Injected so tests do not wait; setTimeout by default. */
  sleep?: (ms: number) => Promise<void>;
}

export function progressBar(p: Pick<Progress, "done" | "total">, width = 30): string {
  const frac = p.total > 0 ? Math.min(1, p.done / p.total) : 1;
  const full = Math.round(frac * width);
  return `[${"#".repeat(full)}${"-".repeat(width - full)}] ${String(Math.round(frac * 100)).padStart(3)}%`;
}

/** Polls until the operation ends or the timeout passes; writes progress; returns the outcome (also set as the exit code). */
export async function waitWithProgress(env: CliEnv, label: string, poll: () => Promise<Progress>, o: WaitOptions): Promise<WaitOutcome> {
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const tty = (env.stdout as { isTTY?: boolean }).isTTY === true;
  const start = env.now().getTime();
  let last = "";
  let outcome: WaitOutcome;
  for (;;) {
    let p: Progress;
    try {
      p = await poll();
    } catch (e) {
      if (tty && last) env.stdout.write("\n");
      env.stderr.write(`${label}: cannot read progress: ${(e as Error).message}\n`);
      outcome = "error";
      break;
    }
    const line = `${label}: ${p.done}/${p.total} ${p.detail}`;
    if (tty) env.stdout.write(`\r\x1b[2K${progressBar(p)} ${line}`);
    else if (line !== last) env.stdout.write(`${env.now().toISOString()} ${line}\n`);
    last = line;
    if (p.outcome) {
      outcome = p.outcome;
      break;
    }
    if (o.timeoutMs !== undefined && env.now().getTime() - start >= o.timeoutMs) {
      outcome = "timeout";
      break;
    }
    await sleep(o.intervalMs);
  }
  if (tty && last && outcome !== "error") env.stdout.write("\n");
  const says: Record<WaitOutcome, string> = {
    done: "finished",
    failed: "finished with failures",
    cancelled: "was cancelled",
    timeout: "is still running (gave up waiting; it goes on on the server)",
    error: "could not be followed",
  };
  env.stdout.write(`${label} ${says[outcome]} (exit ${WAIT_EXIT[outcome]})\n`);
  env.exitCode = WAIT_EXIT[outcome];
  return outcome;
}
