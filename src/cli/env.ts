// What a verb may touch of the world it runs in: output streams, environment variables, the exit
// code and the clock. main.ts hands every verb the process's own; an in-process test can hand it
// buffers, a fixed environment and a fake clock instead.
import type { Writable } from "node:stream";

export interface CliEnv {
  stdout: Writable;
  stderr: Writable;
  env: NodeJS.ProcessEnv;
  now(): Date;
  /** The code the command ends with (undefined: 0 unless something failed). */
  exitCode: number | undefined;
}

export function processCliEnv(): CliEnv {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    now: () => new Date(),
    get exitCode() {
      return process.exitCode === undefined ? undefined : Number(process.exitCode);
    },
    set exitCode(code: number | undefined) {
      process.exitCode = code;
    },
  };
}
