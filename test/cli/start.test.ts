import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import path from "node:path";
import { freePort, ROOT, tempDir } from "../support/helpers.js";

/** Runs `npm start` until the status table is printed, then stops it with SIGTERM. */
async function npmStart(home: string, port: number): Promise<{ out: string; code: number | null }> {
  const child = spawn("npm", ["start", "--silent"], {
    cwd: ROOT,
    detached: true,
    env: { ...process.env, NODECERT_HOME: home, NODECERT_LISTEN: `127.0.0.1:${port}`, NODECERT_HEALTH_LISTEN: "127.0.0.1:0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`npm start printed no status table in time:\n${out}`)), 45_000);
    const check = () => {
      if (/Ctrl-C to stop/.test(out)) {
        clearTimeout(t);
        resolve();
      }
    };
    child.stdout.on("data", check);
    void exited.then((c) => reject(new Error(`npm start exited ${c}:\n${out}`)));
  });
  process.kill(-child.pid!, "SIGTERM");
  return { out, code: await exited };
}

describe("npm start: the embedded default", function () {
  it("brings up a server and a joined agent under NODECERT_HOME, prints two valid certificates, and restarts without re-joining", async () => {
    const home = path.join(tempDir(), ".nodecert");
    const port = await freePort();
    const first = await npmStart(home, port);
    assert.match(first.out, /kubelet-client\s.*\svalid/);
    assert.match(first.out, /kubelet-server\s.*\svalid/);
    assert.match(first.out, /control plane\s+https:\/\/127.0.0.1:\d+/);
    const pki = path.join(home, "node/var/lib/kubelet/pki");
    const files = readdirSync(pki).sort();
    assert.equal(files.filter((f) => /^kubelet-(client|server)-\d/.test(f)).length, 2);
    const second = await npmStart(home, port);
    assert.match(second.out, /kubelet-client\s.*\svalid/);
    assert.deepEqual(readdirSync(pki).sort(), files, "no second join, no new files");
    assert.deepEqual(readdirSync(home).sort(), ["node", "server"], "the spent token file was removed");
  });
});
