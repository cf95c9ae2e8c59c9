// The systemd units: `systemd-analyze verify` passes, and `systemd-analyze security` exposure is no
// worse than the threshold each unit declares in its own comments ("# Exposure threshold: N.N").
//
// verify checks that every Exec*= program exists and is executable, and resolves dependencies
// (network-online.target, multi-user.target, sysinit.target, ...). /usr/lib/nodecert is not
// installed on a build machine, so the units are verified inside a temporary root
// (`--root`): the distribution's own unit directory is copied in, the units go to
// etc/systemd/system as install.sh puts them, and each Exec*= program gets an executable stand-in
// at its absolute path. verify exits 0 even when it only warns (an unknown or misspelled
// directive is "ignored"), so any output that names our units fails too.
import { strict as assert } from "node:assert";
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import path from "node:path";
import { ROOT, requireTool, run, tempDir, type RunResult } from "../support/helpers.js";

const UNITS = ["nodecert-agent.service", "nodecert-server.service"] as const;
const unitFile = (name: string) => path.join(ROOT, "systemd", name);
const unitText = (name: string) => readFileSync(unitFile(name), "utf8");

/** "# Exposure threshold: 1.8" in the unit's comments, in tenths (systemd's own resolution). */
function declaredThreshold(text: string): number {
  const found = [...text.matchAll(/^#\s*Exposure threshold:\s*(\d+)(?:\.(\d))?\s*$/gim)];
  if (found.length !== 1) throw new Error(`the unit must declare exactly one "# Exposure threshold: N.N" comment line, found ${found.length}`);
  return Number(found[0][1]) * 10 + Number(found[0][2] ?? 0);
}

/** Absolute program paths of every Exec*= line ("+", "-", "@", "!", ":" prefixes stripped). */
function execPrograms(text: string): string[] {
  const out = new Set<string>();
  for (const m of text.matchAll(/^\s*Exec[A-Za-z]+\s*=\s*([-+@!:|]*)(\S+)/gm)) out.add(m[2]);
  return [...out];
}

/** A temporary root with the host's system units, ours in etc/systemd/system and stand-ins for programs. */
function unitRoot(units: Record<string, string>, o: { stubs?: boolean } = {}): string {
  const root = tempDir("nodecert-unitroot-");
  const systemDir = ["/usr/lib/systemd/system", "/lib/systemd/system"].find((d) => existsSync(path.join(d, "sysinit.target")));
  if (!systemDir) throw new Error("no systemd unit directory with sysinit.target on this machine");
  const real = realpathSync(systemDir);
  cpSync(real, path.join(root, real), { recursive: true, verbatimSymlinks: true });
  const etc = path.join(root, "etc/systemd/system");
  mkdirSync(etc, { recursive: true });
  for (const [name, text] of Object.entries(units)) writeFileSync(path.join(etc, name), text);
  if (o.stubs !== false) {
    for (const text of Object.values(units)) {
      for (const program of execPrograms(text)) {
        const p = path.join(root, program);
        mkdirSync(path.dirname(p), { recursive: true });
        writeFileSync(p, "#!/bin/sh\nexit 0\n");
        chmodSync(p, 0o755);
      }
    }
  }
  return root;
}

/** Lines of `systemd-analyze verify` output that concern our units (it exits 0 on warnings). */
function problems(r: RunResult): string[] {
  return `${r.stdout}\n${r.stderr}`.split("\n").filter((l) => /nodecert/.test(l));
}

function verify(root: string, names: string[]): Promise<RunResult> {
  return run("systemd-analyze", ["verify", `--root=${root}`, ...names]);
}

/** Overall exposure in tenths, from `systemd-analyze security --offline=true <file>`. */
async function exposure(file: string): Promise<{ tenths: number; text: string; output: string }> {
  const r = await run("systemd-analyze", ["security", "--offline=true", "--no-pager", file]);
  const out = `${r.stdout}\n${r.stderr}`;
  const m = /Overall exposure level for \S+: (\d+)\.(\d)/.exec(out);
  if (!m) throw new Error(`no exposure level in systemd-analyze security output (exit ${r.code}):\n${out}`);
  return { tenths: Number(m[1]) * 10 + Number(m[2]), text: `${m[1]}.${m[2]}`, output: out };
}

describe("systemd units", () => {
  describe("content", () => {
    it("start the installed program with the documented arguments", () => {
      assert.match(unitText("nodecert-agent.service"), /^ExecStart=\/usr\/lib\/nodecert\/bin\/nodecert agent --config \/etc\/nodecert\/agent\.yaml$/m);
      assert.match(unitText("nodecert-server.service"), /^ExecStart=\/usr\/lib\/nodecert\/bin\/nodecert server run --dir \/var\/lib\/nodecert-server$/m);
    });

    for (const name of UNITS) {
      it(`${name}: network-online, restart with delay, notify readiness, umask 0077, no capabilities`, () => {
        const t = unitText(name);
        for (const line of ["After=network-online.target", "Wants=network-online.target", "Restart=on-failure", "Type=notify", "NotifyAccess=all", "UMask=0077", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "SystemCallFilter=@system-service", "CapabilityBoundingSet=", "MemoryDenyWriteExecute=no"]) {
          assert.ok(t.split("\n").includes(line), `${name} lacks "${line}"`);
        }
        assert.match(t, /^RestartSec=\d+s$/m);
        assert.doesNotThrow(() => declaredThreshold(t));
      });
    }

    it("agent: writable are exactly the state directory and the kubelet's PKI and kubeconfig directories", () => {
      const t = unitText("nodecert-agent.service");
      assert.deepEqual(t.match(/^ReadWritePaths=.*$/gm), ["ReadWritePaths=/var/lib/kubelet/pki /etc/kubernetes"]);
      assert.match(t, /^StateDirectory=nodecert$/m);
      assert.match(t, /^RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK$/m);
    });

    it("server: KEK through LoadCredential, state directory only", () => {
      const t = unitText("nodecert-server.service");
      assert.match(t, /^LoadCredential=kek:\/etc\/nodecert\/kek$/m);
      assert.match(t, /^StateDirectory=nodecert-server$/m);
      assert.equal(t.match(/^ReadWritePaths=/m), null);
      assert.match(t, /^RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6$/m);
    });

    it("parses the declared threshold and the Exec programs", () => {
      assert.equal(declaredThreshold("x\n# Exposure threshold: 2.3\ny"), 23);
      assert.equal(declaredThreshold("#   exposure threshold: 4\n"), 40);
      assert.throws(() => declaredThreshold("# no threshold"), /exactly one/);
      assert.deepEqual(execPrograms("ExecStartPre=+/bin/mkdir -p /x\nExecStart=/usr/lib/nodecert/bin/nodecert agent\nExecReload=-/bin/kill -HUP $MAINPID\n"), ["/bin/mkdir", "/usr/lib/nodecert/bin/nodecert", "/bin/kill"]);
    });
  });

  describe("systemd-analyze", function () {
    before(function () {
      requireTool(this, "systemd-analyze");
    });

    it("verify passes on both units (in a temporary root where their programs exist)", async () => {
      const units = Object.fromEntries(UNITS.map((n) => [n, unitText(n)]));
      const r = await verify(unitRoot(units), [...UNITS]);
      assert.deepEqual(problems(r), [], `systemd-analyze verify:\n${r.stdout}${r.stderr}`);
      assert.equal(r.code, 0, `systemd-analyze verify exited ${r.code}:\n${r.stdout}${r.stderr}`);
    });

    it("verify would catch a missing program and a misspelled directive (the check is not vacuous)", async () => {
      const agent = "nodecert-agent.service";
      const missing = await verify(unitRoot({ [agent]: unitText(agent) }, { stubs: false }), [agent]);
      assert.notEqual(missing.code, 0);
      assert.ok(problems(missing).some((l) => /is not executable/.test(l)), missing.stderr);

      const typo = unitText(agent).replace("ProtectSystem=strict", "ProtectSytem=strict");
      const warned = await verify(unitRoot({ [agent]: typo }), [agent]);
      assert.equal(warned.code, 0, "verify exits 0 on an unknown directive; only its output tells");
      assert.ok(problems(warned).some((l) => /ProtectSytem/.test(l)), `${warned.stdout}${warned.stderr}`);
    });

    for (const name of UNITS) {
      it(`${name}: security exposure is not above the threshold in its comments`, async () => {
        const threshold = declaredThreshold(unitText(name));
        const e = await exposure(unitFile(name));
        console.log(`      ${name}: exposure ${e.text} (threshold ${threshold / 10})`);
        assert.ok(e.tenths <= threshold, `${name} exposure ${e.text} is above its declared threshold ${threshold / 10}:\n${e.output}`);
      });
    }

    it("a loosened unit scores above its threshold (the check is not vacuous)", async () => {
      const name = "nodecert-agent.service";
      const text = unitText(name);
      const loose = text
        .split("\n")
        .filter((l) => !/^(ProtectSystem|ProtectHome|PrivateDevices|CapabilityBoundingSet|SystemCallFilter)=/.test(l))
        .join("\n");
      const file = path.join(tempDir(), name);
      writeFileSync(file, loose);
      const e = await exposure(file);
      assert.ok(e.tenths > declaredThreshold(text), `loosened unit scored ${e.text}`);
    });
  });
});
