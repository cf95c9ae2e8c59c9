// Which modules a real process loads: scripts/module-trace.mjs records the files it imports and
// Node's built-ins; dist/meta.json (written by the build) says which sources each dist file holds.
import { readFileSync, existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ROOT, run, tempDir, type RunResult } from "./helpers.js";

export interface ModuleTrace extends RunResult {
  /** Source files (repo-relative: src/..., node_modules/...) whose code the process loaded. */
  sources: string[];
  /** dist/ files the process loaded. */
  distFiles: string[];
  /** process.moduleLoadList: "NativeModule tls", "Internal Binding ...". */
  internals: string[];
}

export async function traceModules(cmd: string, args: string[], o: { env?: NodeJS.ProcessEnv; meta?: string } = {}): Promise<ModuleTrace> {
  const out = path.join(tempDir("nodecert-trace-"), "trace.json");
  const r = await run(cmd, args, { env: { ...o.env, NODE_OPTIONS: `--import ${path.join(ROOT, "scripts/module-trace.mjs")}`, NODECERT_MODULE_TRACE: out } });
  if (!existsSync(out)) throw new Error(`no module trace from ${cmd} ${args.join(" ")} (exit ${r.code}): ${r.stderr}`);
  const trace = JSON.parse(readFileSync(out, "utf8")) as { files: string[]; internals: string[] };
  const meta = JSON.parse(readFileSync(o.meta ?? path.join(ROOT, "dist/meta.json"), "utf8")) as { outputs: Record<string, { inputs: Record<string, unknown> }> };
  const sources = new Set<string>();
  const distFiles: string[] = [];
  for (const url of trace.files) {
    const rel = path.relative(ROOT, fileURLToPath(url));
    const output = meta.outputs[rel];
    if (output) {
      distFiles.push(rel);
      for (const input of Object.keys(output.inputs)) sources.add(input);
    } else sources.add(rel);
  }
  return { ...r, sources: [...sources].sort(), distFiles, internals: trace.internals };
}
