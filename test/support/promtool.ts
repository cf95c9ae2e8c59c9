// promtool (Debian's prometheus package) as the judge of what nodecert exposes and ships.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { run, tempDir } from "./helpers.js";

export interface MetricsCheck {
  /** promtool's exit code: 0 clean, 1 does not parse, 3 parses with lint notes. */
  code: number;
  /** One line per lint note ("<metric> <problem>"). */
  problems: string[];
  output: string;
}

/** `promtool check metrics` reading an exposition on stdin. */
export async function checkMetrics(exposition: string): Promise<MetricsCheck> {
  const r = await run("promtool", ["check", "metrics"], { input: exposition });
  const output = (r.stdout + r.stderr).trim();
  return { code: r.code, problems: output ? output.split("\n") : [], output };
}

/** Writes `text` to a temp file and returns its path (promtool reads rule and test files). */
export function tempFile(name: string, text: string): string {
  const p = path.join(tempDir(), name);
  writeFileSync(p, text);
  return p;
}

/** The value of one sample (`name{labels} value`) in an exposition, or undefined. */
export function sample(exposition: string, series: string): number | undefined {
  for (const line of exposition.split("\n")) {
    if (line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    if (line.slice(0, i) === series) return Number(line.slice(i + 1).replace("+Inf", "Infinity").replace("-Inf", "-Infinity"));
  }
  return undefined;
}
