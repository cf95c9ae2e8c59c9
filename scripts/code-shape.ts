// Code-shape figures for src/: the longest functions/classes (lines), how many exceed 60 lines,
// and the import arrows that run back up the layers
//   pki/protocol (0) → crypto/config/platform (1) → agent/server/ui (2) → cli (3)
// (an arrow from a lower layer to a higher one), plus arrows across siblings of layer 2
// (agent ↔ server), which should not exist either. Used for issue 12's before/after note.
//
// Usage: node --import tsx scripts/code-shape.ts [--top N] [--src DIR]
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import ts from "typescript";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const { values: o } = parseArgs({ options: { top: { type: "string" }, src: { type: "string" } } });
const srcDir = path.resolve(o.src ?? path.join(root, "src"));
const top = Number(o.top ?? 15);
const LONG = 60;

const LAYER: Record<string, number> = {
  pki: 0, protocol: 0, "version.ts": 0,
  crypto: 1, config: 1, platform: 1,
  agent: 2, server: 2, ui: 2,
  cli: 3,
};

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith(".ts") ? [p] : [];
  });
}

const top0 = (rel: string) => rel.split(path.sep)[0]!;
interface Unit { file: string; name: string; lines: number }
const units: Unit[] = [];
const back: string[] = [];
const across: string[] = [];
const dirEdges = new Set<string>();
let arrows = 0;
// Layer-1 helpers that belong to one side: the agent must not import the server's config and back.
const SIDE: Record<string, string> = { "config/server.ts": "server", "config/agent.ts": "agent" };
function classify(rel: string, target: string, dynamic: boolean) {
  const from = top0(rel), to = top0(target);
  const t = target.replace(/\.js$/, ".ts");
  const label = `${rel} → ${t}${dynamic ? " (dynamic)" : ""}`;
  const side = SIDE[t];
  if (side && (from === "agent" || from === "server") && side !== from) across.push(label);
  if (to === from) return;
  arrows++;
  dirEdges.add(`${from}>${to}`);
  const lf = LAYER[from] ?? 1, lt = LAYER[to] ?? 1;
  if (lt > lf) back.push(label);
  else if (lt === lf && lf === 2) across.push(label);
}

for (const file of walk(srcDir)) {
  const rel = path.relative(srcDir, file);
  const text = readFileSync(file, "utf8");
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const lineOf = (pos: number) => sf.getLineAndCharacterOfPosition(pos).line;
  const span = (n: ts.Node) => lineOf(n.getEnd()) - lineOf(n.getStart(sf)) + 1;
  const visit = (n: ts.Node, owner: string) => {
    let name: string | undefined;
    if (ts.isFunctionDeclaration(n) && n.name) name = n.name.text;
    else if (ts.isClassDeclaration(n) && n.name) name = `class ${n.name.text}`;
    else if ((ts.isMethodDeclaration(n) || ts.isConstructorDeclaration(n)) && n.body)
      name = `${owner}.${ts.isConstructorDeclaration(n) ? "constructor" : n.name.getText(sf)}`;
    else if (ts.isVariableDeclaration(n) && n.initializer && (ts.isArrowFunction(n.initializer) || ts.isFunctionExpression(n.initializer)))
      name = n.name.getText(sf);
    if (name) units.push({ file: rel, name, lines: span(n) });
    const nextOwner = ts.isClassDeclaration(n) && n.name ? n.name.text : owner;
    ts.forEachChild(n, (c) => visit(c, nextOwner));
  };
  visit(sf, "");
  for (const st of sf.statements) {
    const spec = (ts.isImportDeclaration(st) || ts.isExportDeclaration(st)) && st.moduleSpecifier && ts.isStringLiteral(st.moduleSpecifier) ? st.moduleSpecifier.text : undefined;
    if (!spec?.startsWith(".")) continue;
    // Type-only imports count too: they couple the layers just the same.
    classify(rel, path.relative(srcDir, path.resolve(path.dirname(file), spec)), false);
  }
  // Dynamic imports count too (lazy verbs, lazily loaded modules).
  for (const m of text.matchAll(/import\(\s*["'](\.[^"']+)["']\s*\)/g)) {
    classify(rel, path.relative(srcDir, path.resolve(path.dirname(file), m[1]!)), true);
  }
}

units.sort((a, b) => b.lines - a.lines);
const functions = units.filter((u) => !u.name.startsWith("class "));
const classes = units.filter((u) => u.name.startsWith("class "));
console.log(`code shape of ${path.relative(root, srcDir) || "."}: ${walk(srcDir).length} files`);
console.log(`functions/methods: ${functions.length}; over ${LONG} lines: ${functions.filter((u) => u.lines > LONG).length}`);
for (const u of functions.slice(0, top)) console.log(`  ${String(u.lines).padStart(4)}  ${u.name}  (${u.file})`);
console.log(`classes over ${LONG * 3} lines: ${classes.filter((u) => u.lines > LONG * 3).length}`);
for (const u of classes.slice(0, Math.min(top, 8))) console.log(`  ${String(u.lines).padStart(4)}  ${u.name}  (${u.file})`);
console.log(`cross-directory import arrows: ${arrows}; running back up the layers: ${back.length}; agent↔server: ${across.length}`);
for (const l of back) console.log(`  up: ${l}`);
for (const l of across) console.log(`  across: ${l}`);
const cycles = [...dirEdges].filter((e) => { const [a, b] = e.split(">"); return a! < b! && dirEdges.has(`${b}>${a}`); });
console.log(`directory pairs importing each other: ${cycles.length}${cycles.length ? " (" + cycles.map((c) => c.replace(">", "↔")).join(", ") + ")" : ""}`);
