// Retention: issuance records past expiry + grace are pruned (each node's newest and confirmed stay,
// so renewals keep working), audit events past their window are exported as JSON lines first and
// only then pruned, `nodecert audit-log export` writes the trail, and the database stays bounded
// in a soak while the same run without retention grows.
import { strict as assert } from "node:assert";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Retention } from "../../src/server/retention.js";
import { SqliteStore } from "../../src/server/store/sqlite.js";
import { silentLogger } from "../../src/platform/log.js";
import { soak } from "../../scripts/soak-retention.js";
import { FakeClock, nodecert, startServer, tempDir } from "../support/helpers.js";
import { joinRaw, renewRaw } from "../support/node-client.js";

const DAY = 86_400_000;

describe("server/retention: old records pruned after export, the database bounded", function () {
  this.timeout(180_000);

  it("certificates expired + grace are pruned but a node's newest stays; the node still renews", async () => {
    const clock = new FakeClock(Date.now());
    const server = await startServer({ clock, overrides: { certificates: { maxClientLifetime: "1h", maxServingLifetime: "1h" }, retention: { certificateGrace: "1h", audit: "30d", interval: 0 } } });
    try {
      const j = await joinRaw(server, "kept", await server.createToken());
      let cred = j.credential!;
      let prev = cred;
      for (let i = 0; i < 3; i++) {
        const r = await renewRaw(server, "kept", cred);
        assert.equal(r.status, 200);
        prev = cred;
        cred = r.credential!;
      }
      // 4 client + 1 serving records; none expired yet.
      assert.equal((await server.retention.runOnce())!.certificatesPruned, 0);
      assert.equal((await server.store.listCertificates("kept")).length, 5);
      clock.advance(2 * 3_600_000 + 60_000); // past expiry + grace
      const run = (await server.retention.runOnce())!;
      const left = await server.store.listCertificates("kept");
      // The newest of each kind stays, and the confirmed client certificate (the one before the
      // newest: it may still hand over if the last response was lost).
      assert.equal(run.certificatesPruned, 2);
      assert.deepEqual(left.map((c) => c.kind).sort(), ["client", "client", "serving"]);
      assert.ok(left.some((c) => c.serial === cred.serial));
      assert.ok(left.some((c) => c.serial === prev.serial));
      assert.equal((await server.store.latestCertificates("kept", "client", 1))[0].serial, cred.serial, "the lineage still knows the newest");
    } finally {
      await server.close();
    }
  });

  it("audit events past the window are exported as JSON lines first, then pruned; a failed export prunes nothing", async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const store = new SqliteStore(path.join(tempDir(), "s.db"));
    const archiveDir = path.join(tempDir(), "archive");
    const retention = new Retention({ store, policy: { certificateGrace: DAY, audit: 10 * DAY, interval: 0 }, archiveDir, clock: clock.now, logger: silentLogger(), setTimer: () => ({ cancel() {} }) });
    for (let d = 0; d < 20; d++) {
      await store.audit({ time: clock.now(), type: "renew.issued", node: `n${d}`, source: "10.0.0.1", detail: { day: d } });
      clock.advance(DAY);
    }
    // The archive directory is a file: the export fails, so nothing may be pruned.
    writeFileSync(archiveDir, "in the way");
    await assert.rejects(retention.runOnce());
    assert.equal((await store.listAudit(100)).length, 20);
    const { rmSync } = await import("node:fs");
    rmSync(archiveDir);
    const run = (await retention.runOnce())!;
    assert.equal(run.auditExported, 10);
    assert.equal(run.auditPruned, 10);
    const lines = readFileSync(run.archive!, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { type: string; node: string; detail: { day: number } });
    assert.deepEqual(lines.map((l) => l.detail.day), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], "oldest first, exactly the pruned ones");
    assert.equal(statSync(run.archive!).mode & 0o777, 0o600);
    const left = await store.listAudit(100);
    assert.deepEqual(left.map((e) => (e.detail as { day: number }).day).sort((a, b) => a - b), [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    await store.close();
  });

  it("nodecert audit-log export writes the trail as JSON lines (stdout or a 0600 file), --before narrows it", async () => {
    const server = await startServer();
    try {
      await joinRaw(server, "exported", await server.createToken());
      const all = await server.store.listAudit(1000);
      const out = await nodecert(["audit-log", "export", "--dir", server.dir]);
      assert.equal(out.code, 0, out.stderr);
      const lines = out.stdout.trim().split("\n").map((l) => JSON.parse(l) as { type: string; time: string });
      assert.equal(lines.length, all.length);
      assert.ok(lines.some((l) => l.type === "join.issued"));
      assert.deepEqual(lines.map((l) => l.time), [...lines.map((l) => l.time)].sort(), "oldest first");
      const file = path.join(tempDir(), "audit.jsonl");
      const toFile = await nodecert(["audit-log", "export", "--dir", server.dir, "-o", file]);
      assert.equal(toFile.code, 0, toFile.stderr);
      assert.equal(readFileSync(file, "utf8"), out.stdout);
      assert.equal(statSync(file).mode & 0o777, 0o600);
      const none = await nodecert(["audit-log", "export", "--dir", server.dir, "--before", "2000-01-01T00:00:00Z"]);
      assert.equal(none.stdout, "");
      const wrong = await nodecert(["audit-log", "export", "--dir", path.join(tempDir(), "nowhere")]);
      assert.equal(wrong.code, 1);
      assert.match(wrong.stderr, /no server database at .*: pass --dir/);
    } finally {
      await server.close();
    }
  });

  it("soak: 30 nodes renewing daily for 40 days; with retention the file stops growing, without it keeps growing", async () => {
    const run = (retention?: { certificateGrace: number; audit: number }) => {
      const dir = tempDir();
      mkdirSync(dir, { recursive: true });
      return soak({ dir, nodes: 30, days: 40, lifetimeDays: 2, retention });
    };
    const pruned = await run({ certificateGrace: 3 * DAY, audit: 10 * DAY });
    const kept = await run();
    const growth = (r: { bytesByDay: number[] }) => r.bytesByDay[39] / r.bytesByDay[19];
    assert.ok(growth(pruned) < 1.1, `with retention, day 40 / day 20 = ${growth(pruned).toFixed(3)}: ${pruned.bytesByDay}`);
    assert.ok(growth(kept) > 1.3, `without retention the file grows: day 40 / day 20 = ${growth(kept).toFixed(3)}`);
  });
});
