import { strict as assert } from "node:assert";
import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync, chmodSync } from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { ROOT, run, startServer, tempDir, type TestServer } from "../support/helpers.js";
import { until } from "../support/fleet.js";

/** node_modules with this checkout's non-dev packages only (as `npm install --omit=dev` leaves it), linked. */
function productionModules(dest: string): void {
  const lock = JSON.parse(readFileSync(path.join(ROOT, "package-lock.json"), "utf8")) as { packages: Record<string, { dev?: boolean }> };
  for (const [key, info] of Object.entries(lock.packages)) {
    const name = key.replace(/^node_modules\//, "");
    if (!key.startsWith("node_modules/") || info.dev || name.includes("/node_modules/") || !existsSync(path.join(ROOT, key))) continue;
    mkdirSync(path.dirname(path.join(dest, name)), { recursive: true });
    symlinkSync(path.join(ROOT, key), path.join(dest, name));
  }
}

/** Every file under dir (symlinks not followed). */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

/**
 * A simulated snap environment: revision directories built from this tree ($SNAP), a shared
 * $SNAP_COMMON, per-revision $SNAP_DATA, and a stand-in `snapctl` on PATH that keeps `snap set`
 * values in files and records restarts.
 */
class SnapSim {
  readonly base = tempDir("nodecert-snap-");
  readonly common = path.join(this.base, "var/snap/nodecert/common");
  readonly ctl = path.join(this.base, "snapctl-state");
  readonly bin = path.join(this.base, "fake-bin");

  constructor() {
    mkdirSync(this.ctl, { recursive: true });
    mkdirSync(this.bin, { recursive: true });
    const snapctl = path.join(this.bin, "snapctl");
    writeFileSync(
      snapctl,
      `#!/bin/sh
# stand-in for snapctl: get/set from files, record everything else
state="${this.ctl}"
case "$1" in
  get) [ -f "$state/$2" ] && cat "$state/$2"; exit 0 ;;
  set) shift; for kv in "$@"; do printf '%s' "\${kv#*=}" > "$state/\${kv%%=*}"; done ;;
  *) echo "$*" >> "$state/calls.log" ;;
esac
`,
    );
    chmodSync(snapctl, 0o755);
  }

  /**
   * A revision directory laid out as snapcraft's npm plugin leaves it: `npm install -g --prefix
   * $SNAP` of this package, i.e. what package.json "files" packs (bin/, dist/) in
   * $SNAP/lib/node_modules/nodecert with its production dependencies, and $SNAP/bin/nodecert
   * linking to it. No src/, no tsx. `patch` edits a copy of the sources before that revision's
   * dist/ is built from them.
   */
  async revision(rev: number, patch?: (srcDir: string) => void): Promise<string> {
    const dir = path.join(this.base, `snap/nodecert/${rev}`);
    const pkg = path.join(dir, "lib/node_modules/nodecert");
    mkdirSync(pkg, { recursive: true });
    const packed = await run("npm", ["pack", "--ignore-scripts", "--silent", "--pack-destination", this.base], { cwd: ROOT });
    assert.equal(packed.code, 0, packed.stderr);
    const untar = await run("tar", ["-xzf", path.join(this.base, packed.stdout.trim().split("\n").pop()!), "-C", pkg, "--strip-components=1"]);
    assert.equal(untar.code, 0, untar.stderr);
    if (patch) {
      const src = path.join(this.base, `src-rev${rev}/src`);
      cpSync(path.join(ROOT, "src"), src, { recursive: true });
      patch(src);
      const built = await run(process.execPath, [path.join(ROOT, "scripts/build.mjs"), "--src", src, "--outdir", path.join(pkg, "dist")]);
      assert.equal(built.code, 0, built.stderr);
    }
    productionModules(path.join(pkg, "node_modules"));
    mkdirSync(path.join(dir, "bin"), { recursive: true });
    symlinkSync("../lib/node_modules/nodecert/bin/nodecert", path.join(dir, "bin/nodecert"));
    cpSync(path.join(ROOT, "snap/hooks"), path.join(dir, "meta/hooks"), { recursive: true });
    // The bundled runtime snapcraft's npm plugin puts at $SNAP/bin/node; it notes each use.
    writeFileSync(path.join(dir, "bin/node"), `#!/bin/sh\necho "$*" >> "${this.ctl}/bundled-node.log"\nexec "${process.execPath}" "$@"\n`);
    chmodSync(path.join(dir, "bin/node"), 0o755);
    return dir;
  }

  env(snap: string, rev: number): NodeJS.ProcessEnv {
    return {
      ...process.env,
      SNAP: snap,
      SNAP_COMMON: this.common,
      SNAP_DATA: path.join(this.base, `var/snap/nodecert/${rev}`),
      SNAP_REVISION: String(rev),
      SNAP_INSTANCE_NAME: "nodecert",
      PATH: `${this.bin}:${process.env.PATH}`,
    };
  }

  set(values: Record<string, string>): void {
    for (const [k, v] of Object.entries(values)) writeFileSync(path.join(this.ctl, k), v);
  }

  hook(snap: string, rev: number, name: string) {
    return run(path.join(snap, "meta/hooks", name), [], { env: this.env(snap, rev) });
  }

  /** Command lines the bundled $SNAP/bin/node ran. */
  bundledNodeRuns(): string[] {
    const f = path.join(this.ctl, "bundled-node.log");
    return existsSync(f) ? readFileSync(f, "utf8").trim().split("\n") : [];
  }

  calls(): string[] {
    const f = path.join(this.ctl, "calls.log");
    return existsSync(f) ? readFileSync(f, "utf8").trim().split("\n") : [];
  }

  /** The agent daemon as snapd would run it. */
  agent(snap: string, rev: number): { child: ChildProcess; out: () => string; exited: Promise<number | null> } {
    const child = spawn(path.join(snap, "bin/nodecert"), ["agent", "--config", path.join(this.common, "agent.yaml")], { env: this.env(snap, rev), stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout!.on("data", (d) => (out += d));
    child.stderr!.on("data", (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
    return { child, out: () => out, exited };
  }
}

describe("snap: hooks in a simulated snap environment; refresh keeps keys, revert refuses cleanly", function () {
  this.timeout(180_000);
  let server: TestServer;
  after(async () => server?.close());

  it("install → configure → join → refresh with a bumped state schema → post-refresh → same certificates, no re-join, no rotation, channel back; revert refuses", async () => {
    server = await startServer();
    const sim = new SnapSim();
    const rev1 = await sim.revision(1);
    // Revision 2: this tree plus one more state migration (schema v1 → v2).
    const rev2 = await sim.revision(2, (srcDir) => {
      const f = path.join(srcDir, "agent/state-migrations.ts");
      const src = readFileSync(f, "utf8").replace(
        "export const STATE_MIGRATIONS: StateMigration[] = [];",
        'export const STATE_MIGRATIONS: StateMigration[] = [{ to: 2, describe: "record the migrating revision", up: (s) => ({ ...s, migratedBy: "rev2" }) }];',
      );
      assert.ok(src.includes('migratedBy: "rev2"'), "patched the migration list");
      writeFileSync(f, src);
    });
    const nodeRoot = path.join(sim.base, "host-root");
    // What ships is compiled JavaScript on plain node: no TypeScript source, no loader for it.
    for (const rev of [rev1, rev2]) {
      const files = filesUnder(rev).map((f) => path.relative(rev, f));
      assert.ok(files.includes("lib/node_modules/nodecert/dist/cli/main.js"), `dist/ is installed in ${rev}`);
      assert.deepEqual(files.filter((f) => /\.[cm]?ts$/.test(f) && !/\.d\.[cm]?ts$/.test(f)), [], "no TypeScript sources in the snap");
      assert.ok(!files.some((f) => f.startsWith("lib/node_modules/nodecert/src/")), "no src/ in the snap");
      for (const dev of ["tsx", "typescript", "esbuild", "mocha"]) assert.ok(!existsSync(path.join(rev, "lib/node_modules/nodecert/node_modules", dev)), `${dev} is not installed`);
    }

    // install
    const inst = await sim.hook(rev1, 1, "install");
    assert.equal(inst.code, 0, inst.stderr);
    for (const d of [sim.common, path.join(sim.common, "state"), path.join(sim.common, "server")]) assert.equal(statSync(d).mode & 0o777, 0o700, d);

    // configure: a bad value fails the hook and changes nothing
    sim.set({ server: server.url, token: await server.createToken(), "ca-cert-hash": server.pin, "node-name": "snap-node", root: nodeRoot });
    const good = await sim.hook(rev1, 1, "configure");
    assert.equal(good.code, 0, good.stderr);
    const cfgFile = path.join(sim.common, "agent.yaml");
    const cfgBefore = readFileSync(cfgFile, "utf8");
    const cfg = YAML.parse(cfgBefore);
    assert.equal(cfg.stateDir, path.join(sim.common, "state"), "state lives in $SNAP_COMMON");
    assert.equal(statSync(cfgFile).mode & 0o777, 0o600);
    assert.equal(statSync(path.join(sim.common, "token")).mode & 0o777, 0o600);
    sim.set({ "ca-cert-hash": "sha256:not-a-pin" });
    const bad = await sim.hook(rev1, 1, "configure");
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /configuration not changed: invalid CA pin "sha256:not-a-pin"/);
    assert.equal(readFileSync(cfgFile, "utf8"), cfgBefore, "old configuration kept");
    sim.set({ "ca-cert-hash": server.pin });

    // the agent joins
    let agent = sim.agent(rev1, 1);
    // The channel may connect with the new certificates a moment before state.json is written.
    const stateFile = path.join(sim.common, "state/state.json");
    await until("joined (state in $SNAP_COMMON/state) and connected", () => server.hub.connected("snap-node") && existsSync(stateFile), 60_000).catch((e: Error) => {
      throw new Error(`${e.message}; agent output:\n${agent.out()}`);
    });
    const pki = path.join(nodeRoot, "var/lib/kubelet/pki");
    const before = Object.fromEntries(readdirSync(pki).map((f) => [f, readFileSync(path.join(pki, f), "utf8")]));
    const joins = (await server.store.listAudit()).filter((e) => e.type === "join.issued" || e.type === "join.rejoined").length;
    assert.equal(joins, 1);
    assert.ok(!existsSync(path.join(nodeRoot, "var/lib/nodecert/state.json")), "nothing under the host's /var/lib/nodecert");

    // refresh: snapd stops the service, switches revision, runs post-refresh, starts it again
    agent.child.kill("SIGTERM");
    assert.equal(await agent.exited, 0, agent.out());
    const post = await sim.hook(rev2, 2, "post-refresh");
    assert.equal(post.code, 0, post.stderr + post.stdout);
    assert.match(post.stdout, /agent state .*state\.json: v1 → v2: record the migrating revision/);
    assert.ok(sim.calls().includes("restart nodecert.agent"), `post-refresh restarts the agent: ${sim.calls()}`);
    const runs = sim.bundledNodeRuns();
    assert.ok(runs.some((l) => / migrate --config /.test(l)) && runs.some((l) => / agent --config /.test(l)), `hooks and daemons run on the bundled $SNAP/bin/node:\n${runs.join("\n")}`);
    // Plain node on the installed dist/: no loader; the agent daemon adds only V8's lite mode.
    for (const l of runs) assert.match(l, /^(--lite-mode --no-expose-wasm )?\S+\/snap\/nodecert\/\d+\/lib\/node_modules\/nodecert\/dist\/cli\/main\.js /, l);
    const migrated = JSON.parse(readFileSync(path.join(sim.common, "state/state.json"), "utf8"));
    assert.equal(migrated.schemaVersion, 2);
    assert.ok(existsSync(path.join(sim.common, "state/state.json.v1.bak")), "the v1 state is kept as a backup");
    await until("channel gone", () => !server.hub.connected("snap-node"));
    agent = sim.agent(rev2, 2);
    await until("channel back after refresh", () => server.hub.connected("snap-node"), 60_000);
    await new Promise((r) => setTimeout(r, 500)); // give a (wrong) rotation the chance to happen
    const after = Object.fromEntries(readdirSync(pki).map((f) => [f, readFileSync(path.join(pki, f), "utf8")]));
    assert.deepEqual(after, before, "same certificates and keys, byte for byte");
    const audit = await server.store.listAudit();
    assert.equal(audit.filter((e) => e.type === "join.issued" || e.type === "join.rejoined").length, 1, "no new join");
    assert.equal(audit.filter((e) => e.type === "renew.issued").length, 0, "no rotation");

    // revert: the older revision meets v2 state and refuses, touching nothing
    agent.child.kill("SIGTERM");
    assert.equal(await agent.exited, 0, agent.out());
    const stateBefore = readFileSync(path.join(sim.common, "state/state.json"), "utf8");
    const old = sim.agent(rev1, 1);
    const code = await old.exited;
    assert.notEqual(code, 0);
    assert.match(old.out(), /schema version 2, newer than this agent understands \(1\): it was written by a newer nodecert/);
    assert.equal(readFileSync(path.join(sim.common, "state/state.json"), "utf8"), stateBefore, "state untouched");
    const oldMigrate = await run(path.join(rev1, "bin/nodecert"), ["migrate", "--config", cfgFile], { env: sim.env(rev1, 1) });
    assert.notEqual(oldMigrate.code, 0);
    assert.match(oldMigrate.stderr, /newer than this agent understands/);

    // remove keeps the kubelet's files
    const rm = await sim.hook(rev2, 2, "remove");
    assert.equal(rm.code, 0, rm.stderr);
    assert.deepEqual(readdirSync(pki).sort(), Object.keys(before).sort());
  });

  it("snapcraft.yaml declares classic confinement, the CLI and both daemons, and hooks that exist", () => {
    const y = YAML.parse(readFileSync(path.join(ROOT, "snap/snapcraft.yaml"), "utf8"));
    assert.equal(y.confinement, "classic");
    assert.deepEqual(Object.keys(y.apps).sort(), ["agent", "nodecert", "server"]);
    assert.equal(y.apps.agent.daemon, "simple");
    assert.match(y.apps.agent.command, /\$SNAP_COMMON\/agent\.yaml/);
    assert.match(y.apps.server.command, /--dir \$SNAP_COMMON\/server/);
    assert.ok(y.environment.OPENSSL_MODULES);
    assert.equal(y.parts.nodecert["npm-include-node"], true, "the Node runtime is bundled");
    assert.ok(!JSON.stringify(y).includes("SNAP_DATA"), "no state in revision-scoped $SNAP_DATA");
    for (const h of ["install", "configure", "post-refresh", "remove"]) {
      const f = path.join(ROOT, "snap/hooks", h);
      assert.ok(statSync(f).mode & 0o100, `${h} is executable`);
    }
  });
});
