// Host facts come from os-release(5), machine-id(5), uname and `hostname --fqdn`.
import { strict as assert } from "node:assert";
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { distroOf, parseOsRelease, readHostFacts } from "../../src/agent/host-facts.js";
import { tempDir } from "../support/helpers.js";

describe("agent host facts", () => {
  it("parses os-release: quoted and bare values, escapes, comments", () => {
    const r = parseOsRelease('# comment\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\nPRETTY_NAME=\'Debian GNU/Linux 12 (bookworm)\'\nQUOTED="a \\"b\\" \\\\c"\nbroken line\n');
    assert.deepEqual(r, { NAME: "Debian GNU/Linux", VERSION_ID: "12", ID: "debian", PRETTY_NAME: "Debian GNU/Linux 12 (bookworm)", QUOTED: 'a "b" \\c' });
  });

  it("names the distribution and release as the kubelet's hosts report them", () => {
    assert.deepEqual(distroOf({ NAME: "Debian GNU/Linux", VERSION: "12 (bookworm)", PRETTY_NAME: "Debian GNU/Linux 12 (bookworm)", VERSION_ID: "12" }), { distro: "Debian GNU/Linux", release: "12" });
    assert.deepEqual(distroOf({ NAME: "Ubuntu", VERSION: "22.04.4 LTS (Jammy Jellyfish)", PRETTY_NAME: "Ubuntu 22.04.4 LTS", VERSION_ID: "22.04" }), { distro: "Ubuntu", release: "22.04.4 LTS" });
    assert.deepEqual(distroOf({ NAME: "Alpine Linux", VERSION_ID: "3.19.1" }), { distro: "Alpine Linux", release: "3.19.1" });
    assert.deepEqual(distroOf({}), { distro: undefined, release: undefined });
  });

  it("reads the files under a root, prefers /var/lib/dbus/machine-id, and falls back to the hostname without an FQDN", async () => {
    const root = tempDir();
    mkdirSync(path.join(root, "etc"));
    mkdirSync(path.join(root, "var/lib/dbus"), { recursive: true });
    writeFileSync(path.join(root, "etc/os-release"), 'NAME="Fedora Linux"\nVERSION="40 (Server Edition)"\nVERSION_ID=40\n');
    writeFileSync(path.join(root, "etc/machine-id"), "1111\n");
    writeFileSync(path.join(root, "var/lib/dbus/machine-id"), "2222\n");
    const f = await readHostFacts({ root, hostnameFqdn: async () => "n1.example.com", kernel: () => "6.1.0", arch: () => "arm64" });
    assert.deepEqual(f, { fqdn: "n1.example.com", machineId: "2222", distro: "Fedora Linux", release: "40", kernel: "6.1.0", arch: "arm64" });
    const bare = await readHostFacts({ root: tempDir(), hostnameFqdn: async () => undefined });
    assert.deepEqual(bare, { fqdn: os.hostname(), machineId: undefined, distro: undefined, release: undefined, kernel: os.release(), arch: os.arch() });
  });
});
