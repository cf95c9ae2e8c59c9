// Runs a CLI verb in this process, through the same command table as bin/nodecert, with an
// injected CliEnv (buffers for stdout/stderr, a fixed environment, the exit code kept here).
// For tests where the process boundary is not the point; spawn bin/nodecert where it is.
import { Writable } from "node:stream";
import { buildProgram } from "../../src/cli/program.js";
import type { CliEnv } from "../../src/cli/env.js";
import type { RunResult } from "./helpers.js";

function sink(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  return { stream: new Writable({ write: (c, _e, cb) => (chunks.push(c.toString()), cb()) }), text: () => chunks.join("") };
}

export async function cliInProcess(args: string[], o: { env?: NodeJS.ProcessEnv; now?: () => Date } = {}): Promise<RunResult> {
  const out = sink();
  const err = sink();
  const env: CliEnv = { stdout: out.stream, stderr: err.stream, env: { ...process.env, ...(o.env ?? {}) }, now: o.now ?? (() => new Date()), exitCode: undefined };
  // main.ts turns a thrown error into "error: <message>" and exit 1: the same here.
  const program = buildProgram(env).exitOverride();
  try {
    await program.parseAsync(["node", "nodecert", ...args]);
  } catch (e) {
    const code = (e as { exitCode?: number }).exitCode;
    if (typeof code === "number" && (e as { code?: string }).code?.startsWith("commander.")) env.exitCode = code;
    else {
      err.stream.write(`error: ${(e as Error).message}\n`);
      env.exitCode = 1;
    }
  }
  return { code: env.exitCode ?? 0, stdout: out.text(), stderr: err.text() };
}
