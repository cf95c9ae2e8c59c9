// The node store: the one owner of the node's files. Changes run under the state directory's
// lock (read-modify-write never loses an update); reads say what they found, with a code.
import { strict as assert } from "node:assert";
import { mkdirSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { nodeLayout } from "../../src/agent/layout.js";
import { LOCK_FILE, NodeStore, type AgentState } from "../../src/agent/node-store.js";
import { AgentError } from "../../src/agent/errors.js";
import { STATE_SCHEMA_VERSION } from "../../src/agent/state.js";
import { tempDir } from "../support/helpers.js";

const base = (): AgentState => ({ schemaVersion: STATE_SCHEMA_VERSION, nodeName: "n1", server: "https://cp:9443", caPin: "sha256:" + "1".repeat(64), apiServer: "https://cp:6443", joinedAt: "2026-01-01T00:00:00.000Z", certificates: {} });

describe("agent/node-store: the only reader and writer of the node's files", () => {
  it("concurrent update()s from two stores on one root never lose a change, and leave no lock behind", async () => {
    const layout = nodeLayout(path.join(tempDir(), "root"));
    const a = new NodeStore(layout, { what: "a" });
    const b = new NodeStore(layout, { what: "b" });
    await a.update(() => ({ ...base(), lastSuccess: "0" }));
    const bump = (s: AgentState | undefined) => {
      const n = Number(s!.lastSuccess) + 1;
      return new Promise<AgentState>((r) => setImmediate(() => r({ ...s!, lastSuccess: String(n) })));
    };
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).update(bump)));
    assert.equal((await a.read())!.lastSuccess, "20");
    assert.ok(!readdirSync(layout.stateDir).includes(LOCK_FILE), "the lock is released");
  });

  it("update() returning undefined leaves the file as it is", async () => {
    const layout = nodeLayout(path.join(tempDir(), "root"));
    const s = new NodeStore(layout, { what: "t" });
    assert.equal(await s.update(() => undefined), undefined);
    assert.equal(await s.read(), undefined, "no state was invented");
    await s.update(() => base());
    await s.markEvicted(new Date("2026-02-01T00:00:00Z"), "decommissioned");
    await s.markEvicted(new Date("2026-03-01T00:00:00Z"), "again");
    assert.deepEqual((await s.read())!.evicted, { at: "2026-02-01T00:00:00.000Z", reason: "decommissioned" }, "the first eviction is kept");
  });

  it("readCurrent: missing, or unreadable with a code; readCurrentPem throws an AgentError carrying it", async () => {
    const layout = nodeLayout(path.join(tempDir(), "root"));
    const s = new NodeStore(layout, { what: "t" });
    mkdirSync(layout.pkiDir, { recursive: true });
    assert.deepEqual(await s.readCurrent("client"), { state: "missing" });
    assert.equal(await s.readCurrentPem("client"), undefined);
    mkdirSync(layout.current("client"));
    const r = await s.readCurrent("client");
    assert.equal(r.state, "unreadable");
    assert.equal(r.code, "unreadable");
    const err = await s.readCurrentPem("client").catch((e: unknown) => e);
    assert.ok(err instanceof AgentError);
    assert.equal(err.code, "unreadable");
    assert.match(err.message, /EISDIR/);
  });

  it("readTrustBundle: undefined when none is installed, a coded error when it cannot be read", async () => {
    const layout = nodeLayout(path.join(tempDir(), "root"));
    const s = new NodeStore(layout, { what: "t" });
    assert.equal(await s.readTrustBundle(), undefined);
    mkdirSync(layout.kubernetesPkiDir, { recursive: true });
    symlinkSync("ca.crt", layout.caFile); // a link to itself: ELOOP
    const err = await s.readTrustBundle().catch((e: unknown) => e);
    assert.ok(err instanceof AgentError, String(err));
    assert.equal(err.code, "unreadable");
    assert.match(err.message, /cannot read .*ca\.crt/);
  });

  it("a state directory it cannot create fails the change with the reason (no hang, no lock left)", async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, "file"), "x");
    // The state directory would sit under a regular file: ENOTDIR, whoever runs the test.
    const layout = nodeLayout(path.join(dir, "root"), path.join(dir, "file", "state"));
    await assert.rejects(new NodeStore(layout, { what: "t" }).update(() => base()), /ENOTDIR/);
  });
});
