// bin/nodecert runs dist/ on plain node, and refuses a checkout whose build is missing or older
// than its sources, saying how to rebuild. Run on copies of this checkout's bin/, src/ and dist/.
import { strict as assert } from "node:assert";
import { cpSync, rmSync, utimesSync } from "node:fs";
import path from "node:path";
import { ROOT, run, tempDir } from "../support/helpers.js";

function copyTree(parts: string[]): string {
  const dir = path.join(tempDir("nodecert-bin-"), "nodecert");
  for (const p of parts) cpSync(path.join(ROOT, p), path.join(dir, p), { recursive: true, preserveTimestamps: true });
  return dir;
}

describe("bin/nodecert", () => {
  it("runs the built program with plain node", async () => {
    const dir = copyTree(["bin", "src", "dist", "package.json"]);
    const r = await run(path.join(dir, "bin/nodecert"), ["--version"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\d+\.\d+\.\d+\n$/);
  });

  it("refuses a dist/ older than src/ and says how to rebuild", async () => {
    const dir = copyTree(["bin", "src", "dist", "package.json"]);
    const later = new Date(Date.now() + 60_000);
    utimesSync(path.join(dir, "src/agent/renewer.ts"), later, later);
    const r = await run(path.join(dir, "bin/nodecert"), ["status"]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "", "nothing ran");
    assert.match(r.stderr, /dist\/ is older than the sources \(src\/agent\/renewer\.ts changed since the last build\): rebuild with 'npm run build'/);
  });

  it("refuses a checkout without dist/ and says how to build it", async () => {
    const dir = copyTree(["bin", "src", "package.json"]);
    const r = await run(path.join(dir, "bin/nodecert"), ["--help"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /dist\/ is missing: build it with 'npm run build' \(npm install builds it too\)/);
  });

  it("an installed tree (dist/, no src/) runs whatever the file times say", async () => {
    const dir = copyTree(["bin", "dist", "package.json"]);
    rmSync(path.join(dir, "dist/.build-stamp"));
    const r = await run(path.join(dir, "bin/nodecert"), ["--version"]);
    assert.equal(r.code, 0, r.stderr);
  });
});
