// scripts/install.sh --root <tmp>: install twice (the second run changes nothing), the installed
// program runs, and --uninstall removes exactly what was installed while certificates, keys and
// state stay byte-identical.
//
// The script installs the tree it lives in. It runs here from a snapshot of this checkout (the
// files it installs, node_modules hard-linked), so that edits to the working tree during the run
// cannot make the "second run changes nothing" check flaky.
import { strict as assert } from "node:assert";
import { createHash } from "node:crypto";
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync, appendFileSync } from "node:fs";
import path from "node:path";
import { loadYamlConfig } from "../../src/config/load.js";
import { AgentConfig } from "../../src/config/agent.js";
import { BIN, ROOT, requireTool, run, tempDir, type RunResult } from "../support/helpers.js";

const UNITS = ["nodecert-agent.service", "nodecert-server.service"];

/** Everything under `dir`: type, mode, size, mtime (ns), inode, and content hash or link target. */
function listing(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    const abs = path.join(dir, rel);
    const st = lstatSync(abs, { bigint: true });
    const kind = st.isSymbolicLink() ? "l" : st.isDirectory() ? "d" : st.isFile() ? "f" : "?";
    const what = kind === "l" ? readlinkSync(abs) : kind === "f" ? createHash("sha256").update(readFileSync(abs)).digest("hex") : "";
    out.set(rel || ".", `${kind} ${(st.mode & 0o7777n).toString(8)} ${st.size} ${st.mtimeNs} ${st.ino} ${what}`);
    if (kind === "d") for (const n of readdirSync(abs).sort()) walk(path.join(rel, n));
  };
  if (existsSync(dir)) walk("");
  return out;
}

function diff(a: Map<string, string>, b: Map<string, string>): string[] {
  const keys = new Set([...a.keys(), ...b.keys()]);
  return [...keys].filter((k) => a.get(k) !== b.get(k)).map((k) => `${k}: ${a.get(k) ?? "(absent)"} -> ${b.get(k) ?? "(absent)"}`);
}

/** A copy of the files install.sh installs, plus the script; node_modules hard-linked when possible. */
async function snapshotSource(): Promise<string> {
  const src = path.join(tempDir("nodecert-src-"), "nodecert");
  mkdirSync(path.join(src, "scripts"), { recursive: true });
  for (const f of ["package.json", "package-lock.json", "tsconfig.json", "bin", "src", "dist", "systemd", "scripts/install.sh"]) {
    cpSync(path.join(ROOT, f), path.join(src, f), { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
  }
  const sameFs = statSync(ROOT).dev === statSync(src).dev;
  const r = await run("cp", [sameFs ? "-al" : "-a", path.join(ROOT, "node_modules"), path.join(src, "node_modules")]);
  assert.equal(r.code, 0, r.stderr);
  return src;
}

function install(src: string, args: string[]): Promise<RunResult> {
  return run("bash", [path.join(src, "scripts/install.sh"), ...args], { timeoutMs: 120_000 });
}

/** Exists, without following a symlink (the installed links point at absolute paths of the target system). */
const present = (p: string) => lstatSync(p, { throwIfNoEntry: false }) !== undefined;

const fileHash = (f: string) => createHash("sha256").update(readFileSync(f)).digest("hex");

describe("scripts/install.sh", function () {
  this.timeout(180_000);
  let src: string;

  before(async function () {
    requireTool(this, "sha256sum");
    src = await snapshotSource();
  });

  describe("install twice, then uninstall", () => {
    let root: string;
    let first: RunResult;
    const hiddenLock = path.join(ROOT, "node_modules/.package-lock.json");
    let hiddenLockBefore: string;

    before(async () => {
      root = path.join(tempDir("nodecert-root-"), "root");
      hiddenLockBefore = existsSync(hiddenLock) ? `${fileHash(hiddenLock)} ${statSync(hiddenLock).mtimeMs}` : "absent";
      first = await install(src, ["--root", root]);
    });

    it("installs the program, the command link, the configuration directory and the units", () => {
      assert.equal(first.code, 0, `${first.stdout}${first.stderr}`);
      assert.match(first.stdout, /installed nodecert \S+ in \/usr\/lib\/nodecert/);
      const prefix = path.join(root, "usr/lib/nodecert");
      for (const f of ["package.json", "package-lock.json", "bin/nodecert", "dist/cli/main.js", "node_modules/better-sqlite3/package.json"]) {
        assert.ok(existsSync(path.join(prefix, f)), `missing ${f}`);
      }
      assert.equal(readlinkSync(path.join(root, "usr/bin/nodecert")), "/usr/lib/nodecert/bin/nodecert");
      for (const u of UNITS) {
        const f = path.join(root, "etc/systemd/system", u);
        assert.equal(readFileSync(f, "utf8"), readFileSync(path.join(ROOT, "systemd", u), "utf8"));
        assert.equal(statSync(f).mode & 0o777, 0o644);
      }
      assert.equal(statSync(path.join(root, "etc/nodecert")).mode & 0o777, 0o700);
      const yaml = path.join(root, "etc/nodecert/agent.yaml");
      assert.equal(statSync(yaml).mode & 0o777, 0o600);
      const config = loadYamlConfig(AgentConfig, yaml, { root });
      assert.equal(config.root, root, "the default agent.yaml is a valid (empty) configuration");
    });

    it("installs the compiled program only: no TypeScript sources, no tsx or other devDependencies", () => {
      const prefix = path.join(root, "usr/lib/nodecert");
      const nm = path.join(prefix, "node_modules");
      for (const dev of ["tsx", "esbuild", "mocha", "typescript", "@types/node"]) assert.ok(!existsSync(path.join(nm, dev)), `${dev} should not be installed`);
      assert.ok(!existsSync(path.join(prefix, "src")) && !existsSync(path.join(prefix, "tsconfig.json")), "no sources");
      // (Some dependencies ship their own .ts next to their JavaScript; ours must not be there.)
      const ts = [...listing(prefix).keys()].filter((f) => !f.startsWith("node_modules/") && /\.[cm]?ts$/.test(f) && !/\.d\.[cm]?ts$/.test(f));
      assert.deepEqual(ts, [], "no TypeScript files of nodecert in the installed tree");
      for (const link of readdirSync(path.join(nm, ".bin"))) assert.ok(existsSync(path.join(nm, ".bin", link)), `dangling .bin/${link}`);
    });

    it("never writes into the source tree's node_modules through the hard links", () => {
      const now = existsSync(hiddenLock) ? `${fileHash(hiddenLock)} ${statSync(hiddenLock).mtimeMs}` : "absent";
      assert.equal(now, hiddenLockBefore);
    });

    it("the installed program runs on plain node, without tsx or sources anywhere it could find them", async () => {
      // A copy of the installed tree outside this checkout: nothing can resolve from ROOT's
      // node_modules (which holds tsx) or fall back on src/.
      const alone = path.join(tempDir("nodecert-installed-"), "nodecert");
      const cp = await run("cp", ["-a", path.join(root, "usr/lib/nodecert"), alone]);
      assert.equal(cp.code, 0, cp.stderr);
      const installed = await run(path.join(alone, "bin/nodecert"), ["--version"]);
      assert.equal(installed.code, 0, installed.stderr);
      const fromSource = await run(BIN, ["--version"]);
      assert.equal(installed.stdout.trim(), fromSource.stdout.trim());
      assert.match(installed.stdout.trim(), /^\d+\.\d+\.\d+/);
      // A verb that loads real code (configuration, certificates, the crypto record).
      const status = await run(path.join(alone, "bin/nodecert"), ["status", "--root", path.join(root, "empty-node"), "-o", "json"]);
      assert.equal(status.code, 1, status.stderr);
      assert.deepEqual(JSON.parse(status.stdout).certificates.map((c: { state: string }) => c.state), ["missing", "missing", "missing"]);
      // ...and one that opens the native SQLite addon from the installed node_modules.
      const serverDir = path.join(tempDir(), "server");
      mkdirSync(serverDir);
      writeFileSync(path.join(serverDir, "nodecert.db"), "");
      const migrate = await run(path.join(alone, "bin/nodecert"), ["migrate", "--config", path.join(root, "none.yaml"), "--server-dir", serverDir]);
      assert.equal(migrate.code, 0, migrate.stderr);
      assert.match(migrate.stdout, /server database .*nodecert\.db: at schema v\d+/);
    });

    it("a second run changes nothing (contents, modes, mtimes, inodes)", async () => {
      const before = listing(root);
      const again = await install(src, ["--root", root]);
      assert.equal(again.code, 0, `${again.stdout}${again.stderr}`);
      assert.match(again.stdout, /is up to date/);
      assert.match(again.stdout, /units are up to date/);
      assert.deepEqual(diff(before, listing(root)), []);
    });

    it("the installed units verify against the installed program", async function () {
      requireTool(this, "systemd-analyze");
      // A scratch copy of the root with the distribution's units; /bin/mkdir and /bin/kill
      // (ExecStartPre/ExecReload) get stand-ins, /usr/lib/nodecert/bin/nodecert must be the real one.
      const vroot = path.join(tempDir("nodecert-vroot-"), "root");
      cpSync(path.join(root, "etc"), path.join(vroot, "etc"), { recursive: true, verbatimSymlinks: true });
      mkdirSync(path.join(vroot, "usr/lib/nodecert/bin"), { recursive: true });
      cpSync(path.join(root, "usr/lib/nodecert/bin/nodecert"), path.join(vroot, "usr/lib/nodecert/bin/nodecert"));
      const systemDir = ["/usr/lib/systemd/system", "/lib/systemd/system"].find((d) => existsSync(path.join(d, "sysinit.target")))!;
      const real = path.resolve(systemDir);
      cpSync(real, path.join(vroot, real), { recursive: true, verbatimSymlinks: true });
      for (const p of ["bin/mkdir", "bin/kill"]) {
        mkdirSync(path.dirname(path.join(vroot, p)), { recursive: true });
        writeFileSync(path.join(vroot, p), "#!/bin/sh\n");
        chmodSync(path.join(vroot, p), 0o755);
      }
      const r = await run("systemd-analyze", ["verify", `--root=${vroot}`, ...UNITS]);
      assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
      assert.deepEqual(`${r.stdout}${r.stderr}`.split("\n").filter((l) => /nodecert/.test(l)), []);
    });

    it("--uninstall removes what it installed and leaves certificates, keys and state byte-identical", async () => {
      // What a joined node and a control plane have on disk.
      const put = (rel: string, content: string, mode = 0o600) => {
        const f = path.join(root, rel);
        mkdirSync(path.dirname(f), { recursive: true, mode: 0o700 });
        writeFileSync(f, content, { mode });
      };
      put("var/lib/kubelet/pki/kubelet-client-2026-06-01-00-00-00.pem", "-----BEGIN CERTIFICATE-----\nfake client\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nfake\n-----END PRIVATE KEY-----\n");
      put("var/lib/kubelet/pki/kubelet-server-2026-06-01-00-00-00.pem", "fake serving pair\n");
      symlinkSync("kubelet-client-2026-06-01-00-00-00.pem", path.join(root, "var/lib/kubelet/pki/kubelet-client-current.pem"));
      symlinkSync("kubelet-server-2026-06-01-00-00-00.pem", path.join(root, "var/lib/kubelet/pki/kubelet-server-current.pem"));
      put("etc/kubernetes/pki/ca.crt", "fake CA bundle\n");
      put("etc/kubernetes/kubelet.conf", "apiVersion: v1\nkind: Config\n");
      put("var/lib/nodecert/state.json", '{"schema":1}\n');
      put("var/lib/nodecert-server/ca/ca.key.enc", '{"v":1}\n');
      put("var/lib/nodecert-server/nodecert.db", "sqlite\n");
      put("etc/nodecert/kek", "0123456789abcdef0123456789abcdef");
      put("etc/nodecert/token", "abcdef.0123456789abcdef\n");
      const kept = ["var/lib/kubelet", "etc/kubernetes", "var/lib/nodecert", "var/lib/nodecert-server", "etc/nodecert/kek", "etc/nodecert/token"];
      const before = new Map(kept.map((k) => [k, listing(path.join(root, k))]));

      const r = await install(src, ["--root", root, "--uninstall"]);
      assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
      assert.ok(!present(path.join(root, "usr/lib/nodecert")), "program tree removed");
      assert.ok(!present(path.join(root, "usr/bin/nodecert")), "command link removed");
      for (const u of UNITS) assert.ok(!present(path.join(root, "etc/systemd/system", u)), `${u} removed`);
      assert.ok(!present(path.join(root, "etc/nodecert/agent.yaml")), "the untouched default agent.yaml is removed");
      assert.ok(existsSync(path.join(root, "etc/nodecert")), "/etc/nodecert stays: it holds the kek and the token");
      for (const k of kept) assert.deepEqual(diff(before.get(k)!, listing(path.join(root, k))), [], `${k} changed`);
      assert.match(r.stdout, /left in place/);

      const again = await install(src, ["--root", root, "--uninstall"]);
      assert.equal(again.code, 0);
      assert.match(again.stdout, /nothing to uninstall/);
    });
  });

  describe("operator files and a tampered manifest", () => {
    it("never overwrites an edited agent.yaml, keeps it on uninstall, and ignores manifest entries outside its own paths", async () => {
      const root = path.join(tempDir("nodecert-root-"), "root");
      const first = await install(src, ["--root", root]);
      assert.equal(first.code, 0, `${first.stdout}${first.stderr}`);
      const yaml = path.join(root, "etc/nodecert/agent.yaml");
      writeFileSync(yaml, "server: https://cp.example.com:9443\ncaCertHash: sha256:00\ntokenFile: /etc/nodecert/token\n");
      const edited = readFileSync(yaml);
      const second = await install(src, ["--root", root]);
      assert.equal(second.code, 0, `${second.stdout}${second.stderr}`);
      assert.match(second.stdout, /kept the existing \/etc\/nodecert\/agent\.yaml/);
      assert.deepEqual(readFileSync(yaml), edited);

      mkdirSync(path.join(root, "var/lib/nodecert"), { recursive: true });
      writeFileSync(path.join(root, "var/lib/nodecert/state.json"), "{}\n");
      mkdirSync(path.join(root, "etc/kubernetes"), { recursive: true });
      writeFileSync(path.join(root, "etc/kubernetes/kubelet.conf"), "x\n");
      writeFileSync(path.join(root, "etc/nodecert/kek"), "k".repeat(32));
      appendFileSync(
        path.join(root, "usr/lib/nodecert/.install-manifest"),
        "tree /var/lib/nodecert\nunit /etc/kubernetes/kubelet.conf\nconfig /etc/nodecert/kek " + fileHash(path.join(root, "etc/nodecert/kek")) + "\nlink /etc/nodecert/kek x\n",
      );
      const r = await install(src, ["--root", root, "--uninstall"]);
      assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /not a path this script installs/);
      assert.match(r.stdout, /kept \/etc\/nodecert\/agent\.yaml: you changed it/);
      assert.deepEqual(readFileSync(yaml), edited);
      for (const f of ["var/lib/nodecert/state.json", "etc/kubernetes/kubelet.conf", "etc/nodecert/kek"]) assert.ok(existsSync(path.join(root, f)), `${f} was removed`);
      assert.ok(!existsSync(path.join(root, "usr/lib/nodecert")));
    });

    it("refuses a prefix that is not nodecert's own directory, or one inside state", async () => {
      const root = path.join(tempDir("nodecert-root-"), "root");
      for (const prefix of ["/usr", "/var/lib/nodecert", "/etc/nodecert/lib/nodecert", "relative/nodecert"]) {
        const r = await install(src, ["--root", root, "--prefix", prefix]);
        assert.equal(r.code, 1, `--prefix ${prefix} was accepted`);
        assert.match(r.stderr, /install\.sh: error: --prefix/);
      }
    });
  });
});
