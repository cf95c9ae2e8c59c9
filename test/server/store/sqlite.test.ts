import { strict as assert } from "node:assert";
import { statSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { migrate, MIGRATIONS, SqliteStore } from "../../../src/server/store/sqlite.js";
import { requireTool, run, tempDir } from "../../support/helpers.js";
import { storeContract } from "./contract.js";

describe("server/store/sqlite (a real SQLite file)", () => {
  it("creates the file 0600 with the current schema version, readable by the sqlite3 CLI", async function () {
    const file = path.join(tempDir(), "s.db");
    const s = new SqliteStore(file);
    await s.close();
    assert.equal(statSync(file).mode & 0o777, 0o600);
    requireTool(this, "sqlite3");
    const r = await run("sqlite3", [file, "PRAGMA user_version; SELECT name FROM sqlite_master WHERE type='table' ORDER BY name;"]);
    assert.equal(r.stdout.trim().split("\n").join(","), `${MIGRATIONS.length},audit,campaign_nodes,campaigns,certificate_sans,certificates,kv,nodes,san_grants,sqlite_sequence,tokens`);
  });

  it("migrates an older database forward and keeps its rows", async () => {
    const file = path.join(tempDir(), "s.db");
    const db = new Database(file);
    migrate(db, MIGRATIONS.slice(0, 1));
    db.prepare("INSERT INTO nodes (name, facts, first_seen, last_seen) VALUES ('old', '{}', 1, 1)").run();
    migrate(db, [...MIGRATIONS, "ALTER TABLE nodes ADD COLUMN note TEXT;"]);
    assert.equal(db.pragma("user_version", { simple: true }), MIGRATIONS.length + 1);
    assert.equal((db.prepare("SELECT name FROM nodes").get() as { name: string }).name, "old");
    db.close();
  });

  it("v5: a node's newest certificate of a kind is read through an index, without sorting its history", async () => {
    const file = path.join(tempDir(), "s.db");
    const s = new SqliteStore(file);
    await s.close();
    const db = new Database(file, { readonly: true });
    // The query latestCertificates and the lineage check run on every renewal.
    const plan = (db.prepare("EXPLAIN QUERY PLAN SELECT * FROM certificates WHERE node = ? AND kind = ? ORDER BY rowid DESC LIMIT ?").all("n", "client", 1) as { detail: string }[]).map((r) => r.detail);
    db.close();
    assert.ok(plan.some((d) => /USING INDEX certificates_node_kind/.test(d)), plan.join("; "));
    assert.ok(!plan.some((d) => /TEMP B-TREE/.test(d)), `no sort: ${plan.join("; ")}`);
  });

  it("v4 takes the join address of nodes that joined before from their last join's audit event", async () => {
    const file = path.join(tempDir(), "s.db");
    const db = new Database(file);
    migrate(db, MIGRATIONS.slice(0, 3));
    db.prepare("INSERT INTO nodes (name, facts, first_seen, last_seen) VALUES ('old', '{}', 1, 1), ('other', '{}', 1, 1)").run();
    const audit = db.prepare("INSERT INTO audit (time, type, node, source) VALUES (1, ?, ?, ?)");
    audit.run("join.issued", "old", "10.0.0.1");
    audit.run("renew.issued", "old", "10.0.0.9");
    audit.run("join.rejoined", "old", "::ffff:10.0.0.2");
    db.close();
    const s = new SqliteStore(file);
    assert.equal((await s.getNode("old"))?.joinAddress, "10.0.0.2", "the last join, IPv4-mapped as IPv4");
    assert.equal((await s.getNode("other"))?.joinAddress, undefined);
    await s.close();
  });

  it("refuses a database written by a newer schema instead of touching it", () => {
    const file = path.join(tempDir(), "s.db");
    const db = new Database(file);
    db.pragma(`user_version = ${MIGRATIONS.length + 3}`);
    db.close();
    assert.throws(() => new SqliteStore(file), /schema version \d+, newer than this nodecert understands/);
  });

});

storeContract("SQLite (a real file)", async () => {
  const file = path.join(tempDir(), "s.db");
  return { store: new SqliteStore(file), peer: () => new SqliteStore(file) };
});
