// What the benchmarks read from /proc about a process, and how they print their own command line.
// Linux only (the scripts check before calling).
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";

/** Clock ticks per second, for utime/stime in /proc/<pid>/stat. */
export const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** Quotes a word for a POSIX shell only when it needs it. */
export const shq = (s: string) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/** The command that started this script, as an operator would retype it (for the report). */
export function commandLine(): string {
  return ["node", ...process.execArgv, path.relative(process.cwd(), process.argv[1]) || process.argv[1], ...process.argv.slice(2)].map(shq).join(" ");
}

export interface ProcStatus {
  rssKiB: number;
  anonKiB: number;
  hwmKiB: number;
  threads: number;
  /** utime + stime, clock ticks. */
  cpuTicks: number;
  /** cutime + cstime (waited-for children), clock ticks. */
  childTicks: number;
}

export function readProcStatus(pid: number): ProcStatus {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  const threads = Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? NaN);
  // Fields after "(comm)": state is field 3, utime/stime/cutime/cstime are fields 14–17.
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const f = (n: number) => Number(rest[n - 3]);
  return { rssKiB: kb("VmRSS"), anonKiB: kb("RssAnon"), hwmKiB: kb("VmHWM"), threads, cpuTicks: f(14) + f(15), childTicks: f(16) + f(17) };
}
