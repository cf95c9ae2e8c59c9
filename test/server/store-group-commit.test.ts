// The SQLite store's group commit: writes queued in one event-loop turn share one transaction (one
// fsync), each promise settles only after that commit, and one write that fails is rolled back
// alone (a savepoint) while the rest of its batch commits. A second connection (what another
// process or the sqlite3 CLI sees) reads every write as soon as its promise resolved.
import { strict as assert } from "node:assert";
import path from "node:path";
import Database from "better-sqlite3";
import { SqliteStore } from "../../src/server/store/sqlite.js";
import { hashSecret } from "../../src/server/tokens.js";
import { FakeClock, tempDir } from "../support/helpers.js";

describe("server/store/sqlite: group commit", () => {
  const clock = new FakeClock();
  const facts = (n: string) => ({ hostname: n, addresses: ["10.0.0.1"], agentVersion: "t" });
  const cert = (serial: string, node: string) => ({ serial, node, kind: "client" as const, notBefore: clock.now(), notAfter: new Date(clock.t + 1000), fingerprint256: "ff", issuedAt: clock.now() });

  it("ten joins, ten renewals and an audit event queued together commit as one batch, durable when each resolves", async () => {
    const file = path.join(tempDir(), "s.db");
    const s = new SqliteStore(file);
    await s.insertToken({ id: "abcdef", secretHash: hashSecret("x"), usesLeft: 10, expiresAt: new Date(clock.t + 60_000), createdAt: clock.now() });
    const before = { ...s.groupCommit };
    const joins = await Promise.all(
      Array.from({ length: 10 }, (_, i) => s.commitJoin({ tokenId: "abcdef", now: clock.now(), node: `n${i}`, facts: facts(`n${i}`), certificates: [cert(`a${i}`, `n${i}`)], audit: { time: clock.now(), type: "join.issued", node: `n${i}` } })),
    );
    assert.deepEqual(joins.map((j) => j.code), Array(10).fill("ok"));
    assert.equal(s.groupCommit.batches - before.batches, 1, "one transaction for the ten joins");
    const renewals = Promise.all(
      Array.from({ length: 10 }, (_, i) => s.commitRenewal({ now: clock.now(), node: `n${i}`, facts: facts(`n${i}`), confirmedSerial: `a${i}`, certificates: [cert(`b${i}`, `n${i}`)], audit: { time: clock.now(), type: "renew.issued", node: `n${i}` } })),
    );
    const audit = s.audit({ time: clock.now(), type: "token.rejected", reason: "test" });
    const [outcomes] = await Promise.all([renewals, audit]);
    assert.deepEqual(outcomes.map((o) => o.code), Array(10).fill("ok"));
    assert.equal(s.groupCommit.batches - before.batches, 2);
    assert.equal(s.groupCommit.writes - before.writes, 21);
    // Another connection sees all of it.
    const other = new Database(file, { readonly: true });
    assert.equal((other.prepare("SELECT COUNT(*) AS n FROM certificates").get() as { n: number }).n, 20);
    assert.equal((other.prepare("SELECT COUNT(*) AS n FROM audit").get() as { n: number }).n, 21);
    other.close();
    await s.close();
  });

  it("a write that fails in a batch is rolled back alone: its promise rejects, the others commit", async () => {
    const s = new SqliteStore(path.join(tempDir(), "s.db"));
    await s.insertToken({ id: "abcdef", secretHash: hashSecret("x"), usesLeft: 10, expiresAt: new Date(clock.t + 60_000), createdAt: clock.now() });
    const join = (node: string, serial: string) => s.commitJoin({ tokenId: "abcdef", now: clock.now(), node, facts: facts(node), certificates: [cert(serial, node)], audit: { time: clock.now(), type: "join.issued", node } });
    // n2 reuses n1's serial: a UNIQUE violation after it already spent a token use and upserted its node.
    const results = await Promise.allSettled([join("n1", "s1"), join("n2", "s1"), join("n3", "s3")]);
    assert.deepEqual(results.map((r) => r.status), ["fulfilled", "rejected", "fulfilled"]);
    assert.equal(s.groupCommit.largest >= 3, true);
    assert.equal(await s.getNode("n2"), undefined, "the failed join left no node");
    assert.equal((await s.getToken("abcdef"))!.usesLeft, 8, "and spent no token use");
    assert.deepEqual((await s.listCertificates()).map((c) => c.node).sort(), ["n1", "n3"]);
    await s.close();
  });
});
