import { strict as assert } from "node:assert";
import { statSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { migrate, MIGRATIONS, SqliteStore } from "../../src/server/store/sqlite.js";
import { hashSecret } from "../../src/server/tokens.js";
import { FakeClock, requireTool, run, tempDir } from "../support/helpers.js";

describe("server/store/sqlite (a real SQLite file)", () => {
  const clock = new FakeClock();
  const facts = { hostname: "n1", addresses: ["10.0.0.1"], agentVersion: "t" };
  const cert = (serial: string) => ({ serial, node: "n1", kind: "client" as const, notBefore: clock.now(), notAfter: new Date(clock.t + 1000), fingerprint256: "ff", issuedAt: clock.now() });

  it("creates the file 0600 with the current schema version, readable by the sqlite3 CLI", async function () {
    const file = path.join(tempDir(), "s.db");
    const s = new SqliteStore(file);
    await s.close();
    assert.equal(statSync(file).mode & 0o777, 0o600);
    requireTool(this, "sqlite3");
    const r = await run("sqlite3", [file, "PRAGMA user_version; SELECT name FROM sqlite_master WHERE type='table' ORDER BY name;"]);
    assert.equal(r.stdout.trim().split("\n").join(","), `${MIGRATIONS.length},audit,campaign_nodes,campaigns,certificate_sans,certificates,kv,nodes,san_grants,sqlite_sequence,tokens`);
  });

  it("spends a single-use token exactly once, atomically with the node's certificates", async () => {
    const s = new SqliteStore(path.join(tempDir(), "s.db"));
    await s.insertToken({ id: "abcdef", secretHash: hashSecret("x"), usesLeft: 1, expiresAt: new Date(clock.t + 60_000), createdAt: clock.now() });
    const commit = (serial: string, node: string) => s.commitJoin({ tokenId: "abcdef", now: clock.now(), node, facts, certificates: [cert(serial)], audit: { time: clock.now(), type: "join.issued", node } });
    assert.equal((await commit("01", "n1")).code, "ok");
    assert.equal((await commit("02", "n2")).code, "token-used");
    assert.deepEqual((await s.listCertificates("n1")).map((c) => c.serial), ["01"], "the refused join recorded nothing");
    assert.equal((await s.getToken("abcdef"))!.usesLeft, 0);
    assert.equal((await s.listAudit()).length, 1);
    await s.close();
  });

  it("does not spend an expired token", async () => {
    const s = new SqliteStore(path.join(tempDir(), "s.db"));
    await s.insertToken({ id: "abcdef", secretHash: hashSecret("x"), usesLeft: 5, expiresAt: clock.now(), createdAt: clock.now() });
    assert.equal((await s.commitJoin({ tokenId: "abcdef", now: clock.now(), node: "n1", facts, certificates: [cert("03")], audit: { time: clock.now(), type: "join.issued" } })).code, "token-used");
    await s.close();
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

  it("knows who holds a SAN: a live serving certificate, an exact approval, or a node's name; not CIDRs, expired certificates or evicted nodes", async () => {
    const s = new SqliteStore(path.join(tempDir(), "s.db"));
    const now = new Date("2026-06-01T00:00:00Z");
    const join = async (node: string, serving?: { sans: { dns: string[]; ip: string[] }; notAfter: Date }) => {
      await s.insertToken({ id: node.slice(0, 6).padEnd(6, "x"), secretHash: "h", usesLeft: 1, expiresAt: new Date(now.getTime() + 60_000), createdAt: now, sans: { dns: [], ip: [`10.9.0.${node.length}`], cidrs: ["10.8.0.0/16"] } });
      const certs = serving ? [{ serial: `s-${node}`, node, kind: "serving" as const, notBefore: now, notAfter: serving.notAfter, fingerprint256: "f", issuedAt: now, sans: serving.sans }] : [];
      assert.ok(await s.commitJoin({ tokenId: node.slice(0, 6).padEnd(6, "x"), now, node, joinAddress: "::ffff:10.7.0.1", facts: { hostname: node, addresses: [], agentVersion: "t" }, certificates: certs, audit: { time: now, type: "join.issued", node } }));
    };
    await join("a1", { sans: { dns: ["a1", "a1.lan"], ip: ["10.0.0.1"] }, notAfter: new Date(now.getTime() + 86_400_000) });
    await join("b22", { sans: { dns: ["b.lan"], ip: ["10.0.0.2"] }, notAfter: new Date(now.getTime() - 1) });
    await join("c333");
    await s.addSanGrants("c333", [{ kind: "dns", value: "c.lan", source: "operator", createdAt: now }], { time: now, type: "san.approved", node: "c333" });
    assert.equal((await s.getNode("a1"))?.joinAddress, "10.7.0.1");
    assert.deepEqual((await s.listSanGrants("a1")).map((g) => `${g.kind}:${g.value}:${g.source}`), ["ip:10.9.0.2:token:a1xxxx", "cidr:10.8.0.0/16:token:a1xxxx"]);
    const ask = [
      { kind: "dns" as const, value: "a1.lan" },
      { kind: "ip" as const, value: "10.0.0.1" },
      { kind: "ip" as const, value: "10.0.0.2" },
      { kind: "dns" as const, value: "c.lan" },
      { kind: "dns" as const, value: "b22" },
      { kind: "ip" as const, value: "10.9.0.2" },
      { kind: "ip" as const, value: "10.8.1.1" },
    ];
    assert.deepEqual((await s.sanHolders(ask, "zz", now)).map((h) => `${h.value}:${h.node}:${h.via}`), ["a1.lan:a1:certificate", "10.0.0.1:a1:certificate", "c.lan:c333:approval", "b22:b22:node-name", "10.9.0.2:a1:approval"]);
    assert.deepEqual(await s.sanHolders(ask.slice(0, 2), "a1", now), [], "a node does not hold against itself");
    await s.setEvicted("a1", now);
    assert.deepEqual((await s.sanHolders(ask, "zz", now)).map((h) => h.node), ["c333", "b22"], "an evicted node holds nothing");
    assert.deepEqual(await s.liveServingSans("a1", now), { dns: ["a1", "a1.lan"], ip: ["10.0.0.1"] });
    assert.deepEqual(await s.liveServingSans("b22", now), { dns: [], ip: [] });
    assert.equal(await s.removeSanGrants("c333", [{ kind: "dns", value: "c.lan" }], { time: now, type: "san.revoked", node: "c333" }), 1);
    assert.deepEqual(await s.sanHolders([{ kind: "dns", value: "c.lan" }], "zz", now), []);
    await s.close();
  });

  it("refuses a database written by a newer schema instead of touching it", () => {
    const file = path.join(tempDir(), "s.db");
    const db = new Database(file);
    db.pragma(`user_version = ${MIGRATIONS.length + 3}`);
    db.close();
    assert.throws(() => new SqliteStore(file), /schema version \d+, newer than this nodecert understands/);
  });

  it("reads a campaign's nodes by state, page by page in name order, one by one, and counted", async () => {
    const s = new SqliteStore(path.join(tempDir(), "s.db"));
    const names = ["n-05", "n-01", "n-04", "n-02", "n-03", "n-06"];
    await s.createCampaign({ id: "c1", createdAt: clock.now(), state: "running", maxInFlight: 2, reason: "t", which: ["client"] }, names);
    await s.createCampaign({ id: "c2", createdAt: clock.now(), state: "running", maxInFlight: 2, reason: "t", which: ["client"] }, ["n-01"]);
    await s.updateCampaignNode("c1", "n-02", { state: "in-flight", commandId: "x", attempts: 1 });
    await s.updateCampaignNode("c1", "n-04", { state: "done", serials: { client: "0a" } });
    const nodesOf = (xs: { node: string }[]) => xs.map((x) => x.node);
    assert.deepEqual(nodesOf(await s.listCampaignNodes("c1")), ["n-01", "n-02", "n-03", "n-04", "n-05", "n-06"]);
    assert.deepEqual(nodesOf(await s.listCampaignNodes("c1", { state: "pending", limit: 2 })), ["n-01", "n-03"]);
    assert.deepEqual(nodesOf(await s.listCampaignNodes("c1", { state: "pending", after: "n-03", limit: 2 })), ["n-05", "n-06"]);
    assert.deepEqual(nodesOf(await s.listCampaignNodes("c1", { state: "pending", after: "n-06" })), []);
    assert.deepEqual(nodesOf(await s.listCampaignNodes("c1", { state: "in-flight" })), ["n-02"]);
    assert.equal((await s.getCampaignNode("c1", "n-02"))?.commandId, "x");
    assert.deepEqual((await s.getCampaignNode("c1", "n-04"))?.serials, { client: "0a" });
    assert.equal(await s.getCampaignNode("c2", "n-02"), undefined);
    assert.deepEqual(await s.countCampaignNodes("c1"), { pending: 4, "in-flight": 1, done: 1, failed: 0 });
    assert.deepEqual(await s.countCampaignNodes("c2"), { pending: 1, "in-flight": 0, done: 0, failed: 0 });
    await s.close();
  });
});

describe("server/store/sqlite: the newest certificate is the one recorded last", () => {
  it("even when the clock stepped backwards between issuances", async () => {
    const s = new SqliteStore(path.join(tempDir(), "s.db"));
    const t = Date.parse("2026-06-01T00:00:00Z");
    const rec = (serial: string, at: number) => ({ serial, node: "n1", kind: "client" as const, notBefore: new Date(at), notAfter: new Date(at + 1000), fingerprint256: "ff", issuedAt: new Date(at) });
    await s.recordCertificate(rec("aa", t));
    await s.recordCertificate(rec("bb", t - 60_000)); // issued after "aa", but the clock went back a minute
    assert.deepEqual((await s.latestCertificates("n1", "client", 2)).map((c) => c.serial), ["bb", "aa"]);
    await s.close();
  });
});
