// The `nodecert` command line: parses with commander alone, then runs the one verb asked for
// (program.ts imports each verb's module only when it runs).
import { buildProgram } from "./program.js";
import { processCliEnv } from "./env.js";

buildProgram(processCliEnv())
  .parseAsync(process.argv)
  .catch((e: Error) => {
    process.stderr.write(`error: ${e.message}\n`);
    process.exit(1);
  });
