// A CA rotation killed between finish's two renames (ca/ → ca-old-<id>/, then ca-next/ → ca/)
// must not leave a server that cannot start: the second move is made before the CA is loaded.
import { strict as assert } from "node:assert";
import { cpSync, existsSync, readFileSync, renameSync } from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { initServer } from "../../../src/server/init.js";
import { serverPaths } from "../../../src/server/paths.js";
import { loadCa } from "../../../src/server/ca/ca.js";
import { completeInterruptedFinish, nextCaPaths } from "../../../src/server/fleet/ca-rotation.js";
import { tempDir } from "../../support/helpers.js";

describe("server/fleet/ca-rotation: a finish interrupted between its two file moves", function () {
  this.timeout(30_000);
  const setUp = async () => {
    const dir = path.join(tempDir(), "server");
    await initServer({ dir, now: new Date(), random: (n) => randomBytes(n) });
    const p = serverPaths(dir);
    // Stands in for the prepared next CA: a copy of ca/ with a marker, so the test sees which one loads.
    cpSync(p.caDir, nextCaPaths(p).caDir, { recursive: true });
    return p;
  };

  it("ca/ moved to its archive and ca-next/ still in place: ca-next/ becomes ca/ and loads", async () => {
    const p = await setUp();
    const nextCert = readFileSync(nextCaPaths(p).caCert, "utf8");
    renameSync(p.caDir, path.join(p.dir, "ca-old-r1"));
    await assert.rejects(loadCa(p), /no CA in/, "the shape the kill test hit: nothing loads");
    assert.equal(await completeInterruptedFinish(p), true);
    assert.equal(existsSync(nextCaPaths(p).caDir), false);
    assert.equal(readFileSync(p.caCert, "utf8"), nextCert);
    await loadCa(p);
  });

  it("with ca/ in place (no finish, or finished) it touches nothing", async () => {
    const p = await setUp();
    assert.equal(await completeInterruptedFinish(p), false);
    assert.equal(existsSync(nextCaPaths(p).caDir), true, "a prepared rotation's next CA stays where it is");
  });

  it("without an archive of a first move it does not guess", async () => {
    const p = await setUp();
    renameSync(p.caDir, path.join(p.dir, "elsewhere"));
    assert.equal(await completeInterruptedFinish(p), false);
    assert.equal(existsSync(p.caDir), false);
  });
});
