// Host facts come from systeminformation, loaded only when they are first read.
import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import os from "node:os";
import { readHostFacts } from "../../src/agent/host-facts.js";

describe("agent host facts", () => {
  it("reads this host's kernel, architecture and machine id through systeminformation", async function () {
    this.timeout(20_000);
    const f = await readHostFacts();
    assert.equal(f.kernel, os.release());
    // systeminformation names x64 as Node does.
    assert.equal(f.arch, os.arch());
    const machineId = [ "/var/lib/dbus/machine-id", "/etc/machine-id" ].map((p) => { try { return readFileSync(p, "utf8").trim(); } catch { return ""; } }).find(Boolean);
    if (machineId) assert.equal(f.machineId, machineId);
    const osRelease = (() => { try { return readFileSync("/etc/os-release", "utf8"); } catch { return ""; } })();
    const name = /^NAME="?([^"\n]*)"?$/m.exec(osRelease)?.[1];
    if (name) assert.equal(f.distro, name);
  });
});
