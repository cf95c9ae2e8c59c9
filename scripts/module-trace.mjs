// Records which modules a process loads, for tests and benchmarks (never loaded by nodecert
// itself). Use: NODE_OPTIONS="--import /abs/path/scripts/module-trace.mjs" NODECERT_MODULE_TRACE=FILE.
// At exit FILE holds JSON { files, internals }: `files` are the file: URLs of every ES module
// loaded (recorded by a load hook in the loader thread, so nothing is missed) and every CommonJS
// module in require.cache; `internals` is process.moduleLoadList (Node's built-in modules and
// bindings, e.g. "NativeModule _http_server").
import { appendFileSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { createRequire, register } from "node:module";

const out = process.env.NODECERT_MODULE_TRACE;
if (out) {
  const esmLog = `${out}.esm`;
  // Runs in the loader thread: appends each file URL as it is loaded.
  const hooks = `
    import { appendFileSync } from "node:fs";
    let log;
    export function initialize(data) { log = data.log; }
    export async function load(url, context, next) {
      if (url.startsWith("file:")) appendFileSync(log, url + "\\n");
      return next(url, context);
    }
  `;
  register(`data:text/javascript,${encodeURIComponent(hooks)}`, { data: { log: esmLog } });
  const require = createRequire(import.meta.url);
  process.on("exit", () => {
    let esm = [];
    try {
      esm = readFileSync(esmLog, "utf8").split("\n").filter(Boolean);
      rmSync(esmLog, { force: true });
    } catch {
      // nothing was loaded through the ESM loader
    }
    const cjs = Object.keys(require.cache).map((f) => `file://${f}`);
    const files = [...new Set([...esm, ...cjs])].filter((u) => !u.endsWith("/module-trace.mjs"));
    writeFileSync(out, JSON.stringify({ files, internals: process.moduleLoadList }));
  });
  // Keep the import of appendFileSync used (and the file created) even if no module loads.
  appendFileSync(esmLog, "");
}
