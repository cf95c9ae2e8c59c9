import { strict as assert } from "node:assert";
import { promises as fs, closeSync, openSync, writeSync, unlinkSync } from "node:fs";
import path from "node:path";
import { spawnSync } from "node:child_process";
import type { Context } from "mocha";
import { AgentConfig } from "../../src/config/agent.js";
import { nodeLayout, type NodeLayout } from "../../src/agent/layout.js";
import { nodeIdentity } from "../../src/agent/identity.js";
import { join } from "../../src/agent/join.js";
import { Renewer } from "../../src/agent/renewer.js";
import { AgentMetrics } from "../../src/agent/metrics.js";
import { readState } from "../../src/agent/state.js";
import { privateKeyBlock } from "../../src/pki/pem.js";
import { chainProblems, keyMatchesCertificate } from "../../src/pki/verify.js";
import { certificateInfo } from "../../src/pki/certificate-info.js";
import { TMP_MARKER } from "../../src/platform/files.js";
import type { CertKind } from "../../src/pki/csr.js";
import { quietLogger, startServer, tempDir, type TestServer } from "../support/helpers.js";

const KINDS: CertKind[] = ["client", "serving"];

/** In CI a missing capability is a failure; on a laptop the test skips and says why. */
function unavailable(ctx: Context, why: string): never {
  if (process.env.CI === "true") throw new Error(`${why}: this test needs root and mount(8) (tmpfs, bind mounts) in CI`);
  console.log(`      skipped: ${why}`);
  ctx.skip();
}

function sh(cmd: string, args: string[]): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  return { ok: r.status === 0, out: `${r.stdout ?? ""}${r.stderr ?? ""}${r.error ? r.error.message : ""}`.trim() };
}

const mounts: string[] = [];
function mount(ctx: Context, args: string[], target: string): void {
  if (process.getuid?.() !== 0) unavailable(ctx, "not running as root, cannot mount");
  const r = sh("mount", [...args, target]);
  if (!r.ok) unavailable(ctx, `mount ${[...args, target].join(" ")} failed: ${r.out}`);
  mounts.push(target);
}
function unmount(target: string): void {
  const i = mounts.lastIndexOf(target);
  if (i < 0) return;
  mounts.splice(i, 1);
  if (!sh("umount", [target]).ok) sh("umount", ["-l", target]);
}

async function joinNode(server: TestServer, root: string, nodeName: string): Promise<{ layout: NodeLayout; renewer: Renewer }> {
  const layout = nodeLayout(root);
  const config = AgentConfig.parse({ root, server: server.url, caCertHash: server.pin, nodeName, addresses: { only: ["127.0.0.1"] }, healthListen: "127.0.0.1:0", hooks: [] });
  const identity = () => nodeIdentity({ nodeName, addresses: config.addresses, facts: async () => ({}) });
  const token = await server.createToken({ node: nodeName });
  await join({ server: server.url, token, caCertHash: server.pin, layout, identity: await identity(), keyAlgorithm: config.keyAlgorithm, now: () => new Date(), logger: quietLogger() });
  const clock = () => new Date();
  // Built the way the one-shot `nodecert renew` builds it (src/cli/renew.ts), with no hooks and no retries.
  const renewer = new Renewer({ config, layout, logger: quietLogger(), clock, random: Math.random, identity, setTimer: () => ({ cancel() {} }), metrics: new AgentMetrics(clock) });
  return { layout, renewer };
}

interface Snapshot {
  target: string;
  content: string;
}

async function snapshot(layout: NodeLayout): Promise<Record<CertKind, Snapshot>> {
  const out = {} as Record<CertKind, Snapshot>;
  for (const kind of KINDS) {
    const target = await fs.readlink(layout.current(kind));
    out[kind] = { target, content: await fs.readFile(path.join(layout.pkiDir, target), "utf8") };
  }
  return out;
}

/** Both current links still point at the same files, unchanged, each a matching pair chaining to the CA. */
async function assertUntouched(layout: NodeLayout, before: Record<CertKind, Snapshot>, caBundle: string): Promise<void> {
  for (const kind of KINDS) {
    assert.equal(await fs.readlink(layout.current(kind)), before[kind].target, `${kind}: the current link moved`);
    const pem = await fs.readFile(layout.current(kind), "utf8");
    assert.equal(pem, before[kind].content, `${kind}: the current file changed`);
    assertGoodPair(pem, caBundle, kind);
  }
}

function assertGoodPair(pem: string, caBundle: string, kind: CertKind): void {
  const key = privateKeyBlock(pem);
  assert.ok(key, `${kind}: no private key in the current file`);
  assert.ok(keyMatchesCertificate(pem, key), `${kind}: key and certificate do not match`);
  assert.deepEqual(chainProblems(pem, caBundle, new Date()), [], `${kind}: chain problems`);
}

async function tempLeftovers(layout: NodeLayout): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(dir, e.name);
      if (e.name.includes(TMP_MARKER)) out.push(p);
      if (e.isDirectory()) await walk(p);
    }
  };
  await walk(layout.root);
  return out;
}

/** Writes until the filesystem answers ENOSPC; returns the bytes written. */
function fillUp(file: string): number {
  const fd = openSync(file, "w");
  let total = 0;
  try {
    for (const size of [1 << 20, 1 << 16, 4096, 1]) {
      const chunk = Buffer.alloc(size, 0x5a);
      for (;;) {
        try {
          total += writeSync(fd, chunk);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === "ENOSPC") break;
          throw e;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return total;
}

describe("agent: disk full or unwritable directory during install: clear error, previous certificates untouched", function () {
  let server: TestServer;

  before(async function () {
    server = await startServer();
  });
  after(async () => {
    for (const m of [...mounts].reverse()) unmount(m);
    await server?.close();
  });

  it("disk full (a small tmpfs filled to ENOSPC): the renewal fails with ENOSPC, the old pair stays, no temp files; it renews once space is back", async function () {
    const mnt = tempDir("nodecert-enospc-");
    mount(this, ["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs"], mnt);
    try {
      const { layout, renewer } = await joinNode(server, mnt, "full-node");
      const before = await snapshot(layout);
      const filler = path.join(mnt, "filler");
      assert.ok(fillUp(filler) > 0);
      const probe = openSync(path.join(mnt, "probe"), "w");
      try {
        assert.throws(() => writeSync(probe, "x"), /ENOSPC/, "the filesystem is full");
      } finally {
        closeSync(probe);
      }

      const out = await renewer.renew(["client", "serving"], { force: true });
      assert.ok(out.error, `the renewal reported no error: ${JSON.stringify(out)}`);
      assert.match(out.error, /ENOSPC|no space left/i);
      assert.deepEqual(out.renewed, []);
      await assertUntouched(layout, before, server.ca.bundlePem);
      assert.deepEqual(await tempLeftovers(layout), []);
      assert.equal((await readState(layout))?.certificates.client?.serial, certificateInfo(before.client.content).serial, "state.json still describes the installed client certificate");

      unlinkSync(filler);
      unlinkSync(path.join(mnt, "probe"));
      const again = await renewer.renew(["client", "serving"], { force: true });
      assert.equal(again.error, undefined);
      assert.deepEqual(again.renewed.map((r) => r.kind).sort(), ["client", "serving"]);
      for (const kind of KINDS) {
        assert.notEqual(await fs.readlink(layout.current(kind)), before[kind].target, `${kind}: a new file is current`);
        const pem = await fs.readFile(layout.current(kind), "utf8");
        assertGoodPair(pem, server.ca.bundlePem, kind);
        assert.equal(certificateInfo(pem).serial, again.renewed.find((r) => r.kind === kind)!.serial);
      }
      assert.deepEqual(await tempLeftovers(layout), []);
    } finally {
      unmount(mnt);
    }
  });

  it("read-only pki directory (a read-only bind mount): the renewal fails with EROFS naming the directory, the old pair stays; it renews once writable", async function () {
    const root = path.join(tempDir(), "node");
    const { layout, renewer } = await joinNode(server, root, "ro-node");
    const before = await snapshot(layout);
    mount(this, ["--bind", layout.pkiDir], layout.pkiDir);
    try {
      const r = sh("mount", ["-o", "remount,ro,bind", layout.pkiDir]);
      if (!r.ok) unavailable(this, `remounting ${layout.pkiDir} read-only failed: ${r.out}`);
      await assert.rejects(fs.writeFile(path.join(layout.pkiDir, "probe"), "x"), /EROFS/, "the directory is read-only");

      const out = await renewer.renew(["client", "serving"], { force: true });
      assert.ok(out.error, `the renewal reported no error: ${JSON.stringify(out)}`);
      assert.match(out.error, /EROFS|read-only file system/i);
      assert.ok(out.error.includes(layout.pkiDir), `the error names the directory: ${out.error}`);
      assert.deepEqual(out.renewed, []);
      await assertUntouched(layout, before, server.ca.bundlePem);
      assert.deepEqual(await tempLeftovers(layout), []);
    } finally {
      unmount(layout.pkiDir);
    }
    const again = await renewer.renew(["client", "serving"], { force: true });
    assert.equal(again.error, undefined);
    for (const kind of KINDS) {
      assert.notEqual(await fs.readlink(layout.current(kind)), before[kind].target);
      assertGoodPair(await fs.readFile(layout.current(kind), "utf8"), server.ca.bundlePem, kind);
    }
  });
});
