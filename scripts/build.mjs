#!/usr/bin/env node
// Builds dist/ (what ships) from src/ with esbuild: ES modules for Node 20, the npm dependencies
// bundled in, split into chunks so that every lazily imported verb, the server, the agent daemon
// and the X.509 code each load only when used. Native addons (better-sqlite3) and optional
// native helpers stay external and load from node_modules. Type checking is `tsc --noEmit`
// (npm test), not this step. Writes dist/meta.json (which sources each output file holds) and
// dist/.build-stamp, whose mtime is when this build read src/: bin/nodecert refuses to run a
// dist/ older than any file in src/.
//
// Usage: node scripts/build.mjs [--outdir DIR] [--src DIR]
import { build } from "esbuild";
import { copyFileSync, mkdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const { values: o } = parseArgs({ options: { outdir: { type: "string" }, src: { type: "string" } } });
const src = path.resolve(o.src ?? path.join(root, "src"));
const outdir = path.resolve(o.outdir ?? path.join(root, "dist"));
const started = new Date();

rmSync(outdir, { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: { "cli/main": path.join(src, "cli/main.ts"), "cli/start": path.join(src, "cli/start.ts") },
  outdir,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  chunkNames: "chunks/[name]-[hash]",
  // Native addons and the optional native speed-ups of ws resolve from node_modules at run time.
  external: ["better-sqlite3", "bufferutil", "utf-8-validate"],
  // Bundled CommonJS packages call require() for Node's built-ins; ES modules have no require.
  banner: { js: 'import { createRequire as __nodecertCreateRequire } from "node:module"; const require = __nodecertCreateRequire(import.meta.url);' },
  // Smaller source text is less for V8 to keep in the heap of a long-running agent (~0.7 MiB);
  // names are kept so stack traces stay readable, and the source maps map them back to src/.
  minify: true,
  keepNames: true,
  sourcemap: "linked",
  sourcesContent: false,
  legalComments: "linked",
  metafile: true,
  // Sources outside this tree (tests build patched copies) still resolve this tree's packages.
  nodePaths: [path.join(root, "node_modules")],
  logLevel: "warning",
});
// The fleet dashboard's page (src/ui): one script and one stylesheet for the browser, uPlot
// bundled in, served by `nodecert dashboard` from dist/ui (no CDN: it works offline).
const ui = path.join(outdir, "ui");
await build({
  absWorkingDir: root,
  entryPoints: { app: path.join(src, "ui/app.ts") },
  outdir: ui,
  bundle: true,
  format: "iife",
  platform: "browser",
  target: ["chrome110", "firefox110", "safari16"],
  minify: true,
  sourcemap: "linked",
  sourcesContent: false,
  legalComments: "linked",
  nodePaths: [path.join(root, "node_modules")],
  logLevel: "warning",
});
copyFileSync(path.join(src, "ui/index.html"), path.join(ui, "index.html"));
mkdirSync(outdir, { recursive: true });
writeFileSync(path.join(outdir, "meta.json"), JSON.stringify(result.metafile));
const stamp = path.join(outdir, ".build-stamp");
writeFileSync(stamp, `built ${started.toISOString()} from ${path.relative(root, src) || "."}\n`);
utimesSync(stamp, started, started);
