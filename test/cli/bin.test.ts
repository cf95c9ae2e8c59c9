// bin/nodecert runs dist/ on plain node, and refuses a checkout whose build is missing or older
// than its sources, saying how to rebuild. Run on copies of this checkout's bin/, src/ and dist/.
import { strict as assert } from "node:assert";
import { chmodSync, cpSync, mkdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
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

  it("runs the agent daemon in V8 lite mode, every other verb with node's defaults", async () => {
    const dir = copyTree(["bin", "src", "dist", "package.json"]);
    // A stand-in for the node binary that prints how it was called.
    const snap = tempDir("nodecert-fake-snap-");
    mkdirSync(path.join(snap, "bin"));
    writeFileSync(path.join(snap, "bin/node"), '#!/bin/sh\necho "$*"\n');
    chmodSync(path.join(snap, "bin/node"), 0o755);
    const main = path.join(dir, "dist/cli/main.js");
    const agent = await run(path.join(dir, "bin/nodecert"), ["agent", "--config", "/etc/x.yaml"], { env: { SNAP: snap } });
    assert.equal(agent.stdout, `--lite-mode --no-expose-wasm ${main} agent --config /etc/x.yaml\n`);
    const status = await run(path.join(dir, "bin/nodecert"), ["status", "--root", "/r"], { env: { SNAP: snap } });
    assert.equal(status.stdout, `${main} status --root /r\n`);
  });
});
