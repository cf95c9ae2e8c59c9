// The Store contract: the same cases against every store (SQLite file, etcd cluster), so both give
// the same guarantees. Each store test file calls storeContract with a way to open a fresh store
// and a second handle on the same state (another process / replica).
import { strict as assert } from "node:assert";
import { hashSecret } from "../../../src/server/tokens.js";
import type { Store } from "../../../src/server/store/store.js";
import { FakeClock } from "../../support/helpers.js";

export interface OpenedStore {
  store: Store;
  /** Another handle on the same state (another server process or replica). */
  peer(): Store;
}

export function storeContract(name: string, open: () => Promise<OpenedStore>): void {
  describe(`server/store contract: ${name}`, () => {
  const clock = new FakeClock();
  const facts = { hostname: "n1", addresses: ["10.0.0.1"], agentVersion: "t" };
  const cert = (serial: string) => ({ serial, node: "n1", kind: "client" as const, notBefore: clock.now(), notAfter: new Date(clock.t + 1000), fingerprint256: "ff", issuedAt: clock.now() });
  const opened: Store[] = [];
  let current: OpenedStore | undefined;
  const fresh = async (): Promise<Store> => {
    current = await open();
    opened.push(current.store);
    return current.store;
  };
  const peer = (): Store => {
    const p = current!.peer();
    opened.push(p);
    return p;
  };
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close().catch(() => undefined);
  });

  it("spends a single-use token exactly once, atomically with the node's certificates", async () => {
    const s = await fresh();
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
    const s = await fresh();
    await s.insertToken({ id: "abcdef", secretHash: hashSecret("x"), usesLeft: 5, expiresAt: clock.now(), createdAt: clock.now() });
    assert.equal((await s.commitJoin({ tokenId: "abcdef", now: clock.now(), node: "n1", facts, certificates: [cert("03")], audit: { time: clock.now(), type: "join.issued" } })).code, "token-used");
    await s.close();
  });

  it("knows who holds a SAN: a live serving certificate, an exact approval, or a node's name; not CIDRs, expired certificates or evicted nodes", async () => {
    const s = await fresh();
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

  it("reads a campaign's nodes by state, page by page in name order, one by one, and counted", async () => {
    const s = await fresh();
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
  it("the newest certificate is the one recorded last, even when the clock stepped backwards between issuances", async () => {
    const s = await fresh();
    const t = Date.parse("2026-06-01T00:00:00Z");
    const rec = (serial: string, at: number) => ({ serial, node: "n1", kind: "client" as const, notBefore: new Date(at), notAfter: new Date(at + 1000), fingerprint256: "ff", issuedAt: new Date(at) });
    await s.recordCertificate(rec("aa", t));
    await s.recordCertificate(rec("bb", t - 60_000)); // issued after "aa", but the clock went back a minute
    assert.deepEqual((await s.latestCertificates("n1", "client", 2)).map((c) => c.serial), ["bb", "aa"]);
    await s.close();
  });

  it("N concurrent joins with a 1-use token through N handles: exactly one succeeds, one node, one audit event", async () => {
    const s = await fresh();
    const handles = [s, peer(), peer()];
    await s.insertToken({ id: "race01", secretHash: hashSecret("x"), usesLeft: 1, expiresAt: new Date(clock.t + 60_000), createdAt: clock.now() });
    const outcomes = await Promise.all(
      handles.flatMap((h, i) => [0, 1].map((j) => h.commitJoin({ tokenId: "race01", now: clock.now(), node: `r${i}${j}`, facts, certificates: [{ ...cert(`s${i}${j}`), node: `r${i}${j}` }], audit: { time: clock.now(), type: "join.issued", node: `r${i}${j}` } }))),
    );
    assert.deepEqual(outcomes.map((o) => o.code).sort(), ["ok", "token-used", "token-used", "token-used", "token-used", "token-used"]);
    assert.equal((await s.listNodes()).length, 1);
    assert.equal((await s.listCertificates()).length, 1);
    assert.equal((await s.listAudit()).length, 1);
    assert.equal((await s.getToken("race01"))!.usesLeft, 0);
  });

  it("two concurrent joins for one new name with two tokens: one creates it, the other is told it exists and records nothing", async () => {
    const s = await fresh();
    const p = peer();
    for (const id of ["tokaaa", "tokbbb"]) await s.insertToken({ id, secretHash: "h", usesLeft: 1, expiresAt: new Date(clock.t + 60_000), createdAt: clock.now() });
    const [a, b] = await Promise.all(
      [s, p].map((h, i) => h.commitJoin({ tokenId: i ? "tokbbb" : "tokaaa", now: clock.now(), node: "same", facts, certificates: [{ ...cert(`x${i}`), node: "same" }], audit: { time: clock.now(), type: "join.issued", node: "same" } })),
    );
    assert.deepEqual([a.code, b.code].sort(), ["existing-node", "ok"]);
    assert.equal((await s.listCertificates("same")).length, 1);
    const loser = a.code === "ok" ? "tokbbb" : "tokaaa";
    assert.equal((await s.getToken(loser))!.usesLeft, 1, "the refused join did not spend its token");
  });

  it("a re-join with mayReplace starts a new lineage and lifts an eviction", async () => {
    const s = await fresh();
    for (const id of ["first1", "again1"]) await s.insertToken({ id, secretHash: "h", usesLeft: 1, expiresAt: new Date(clock.t + 60_000), createdAt: clock.now() });
    await s.commitJoin({ tokenId: "first1", now: clock.now(), node: "n1", joinAddress: "10.0.0.5", facts, certificates: [cert("c1")], audit: { time: clock.now(), type: "join.issued", node: "n1" } });
    assert.equal(await s.confirmClientSerial("n1", "c1"), true);
    await s.setEvicted("n1", clock.now());
    const r = await s.commitJoin({ tokenId: "again1", now: clock.now(), node: "n1", mayReplace: true, facts, certificates: [cert("c2")], audit: { time: clock.now(), type: "join.rejoined", node: "n1" } });
    assert.equal(r.code, "ok");
    assert.equal(r.code === "ok" && r.replaced?.confirmedSerial, "c1");
    const n = await s.getNode("n1");
    assert.equal(n?.evictedAt, undefined);
    assert.equal(n?.confirmedSerial, undefined);
    assert.equal(n?.joinAddress, "10.0.0.5", "the join address is kept when the re-join has none");
    assert.equal((await s.commitRenewal({ now: clock.now(), node: "n1", facts, confirmedSerial: "c1", certificates: [cert("c3")], audit: { time: clock.now(), type: "renew.issued", node: "n1" } })).code, "lineage", "a certificate from before the re-join cannot renew");
  });

  it("renewal lineage: only the newest or the confirmed client certificate renews; two racing renewals with old and new cannot both win", async () => {
    const s = await fresh();
    await s.insertToken({ id: "lineag", secretHash: "h", usesLeft: 1, expiresAt: new Date(clock.t + 60_000), createdAt: clock.now() });
    await s.commitJoin({ tokenId: "lineag", now: clock.now(), node: "n1", facts, certificates: [cert("a1")], audit: { time: clock.now(), type: "join.issued", node: "n1" } });
    const renew = (h: Store, presented: string, issued: string) => h.commitRenewal({ now: clock.now(), node: "n1", facts, confirmedSerial: presented, certificates: [cert(issued)], audit: { time: clock.now(), type: "renew.issued", node: "n1" } });
    assert.equal((await renew(s, "a1", "a2")).code, "ok");
    // a1 is confirmed and a2 newest: both may renew, but once a2 renews, a1 may not.
    const p = peer();
    const [x, y] = await Promise.all([renew(s, "a2", "a3"), renew(p, "a1", "a4")]);
    assert.deepEqual([x.code, y.code].sort(), ["lineage", "ok"], "exactly one of the racing renewals wins");
    // The loser's certificate is neither newest nor confirmed now: it stays refused.
    assert.equal((await renew(s, x.code === "ok" ? "a1" : "a2", "a5")).code, "lineage");
    assert.equal((await renew(s, "zz", "a6")).code, "lineage");
    assert.equal((await s.commitRenewal({ now: clock.now(), node: "ghost", facts, confirmedSerial: "a1", certificates: [], audit: { time: clock.now(), type: "renew.issued" } })).code, "unknown-node");
    await s.setEvicted("n1", clock.now());
    const ev = await renew(s, x.code === "ok" ? "a3" : "a4", "a7");
    assert.equal(ev.code, "evicted");
    assert.equal((await s.listCertificates("n1")).length, 3, "refused renewals recorded nothing");
  });

  it("confirms a client serial only when it is the newest one", async () => {
    const s = await fresh();
    await s.insertToken({ id: "confir", secretHash: "h", usesLeft: 1, expiresAt: new Date(clock.t + 60_000), createdAt: clock.now() });
    await s.commitJoin({ tokenId: "confir", now: clock.now(), node: "n1", facts, certificates: [cert("b1")], audit: { time: clock.now(), type: "join.issued", node: "n1" } });
    await s.recordCertificate(cert("b2"));
    assert.equal(await s.confirmClientSerial("n1", "b1"), false);
    assert.equal(await s.confirmClientSerial("n1", "b2"), true);
    assert.equal(await s.confirmClientSerial("n1", "b2"), true);
    assert.equal(await s.confirmClientSerial("nobody", "b2"), false);
    assert.equal((await s.getNode("n1"))?.confirmedSerial, "b2");
    assert.deepEqual((await s.latestCertificates("n1", "client", 5)).map((c) => c.serial), ["b2", "b1"]);
    assert.equal((await s.getCertificate("b1"))?.node, "n1");
    assert.equal(await s.getCertificate("nope"), undefined);
  });

  it("retention: prunes certificates expired before a time except each node's newest of a kind and its confirmed one; audit before a time, oldest first", async () => {
    const s = await fresh();
    assert.ok(s.pruneCertificates && s.pruneAudit && s.auditBefore, "the store supports retention");
    await s.insertToken({ id: "retain", secretHash: "h", usesLeft: 1, expiresAt: new Date(clock.t + 60_000), createdAt: clock.now() });
    const old = (serial: string, kind: "client" | "serving" = "client") => ({ ...cert(serial), kind, notAfter: new Date(clock.t - 10_000) });
    await s.commitJoin({ tokenId: "retain", now: clock.now(), node: "n1", facts, certificates: [old("p1"), old("v1", "serving")], audit: { time: new Date(clock.t - 5000), type: "join.issued", node: "n1" } });
    await s.recordCertificate(old("p2"));
    assert.equal(await s.confirmClientSerial("n1", "p2"), true);
    await s.recordCertificate(old("p3"));
    await s.recordCertificate(old("v2", "serving"));
    // p1 and v1 are neither newest nor confirmed: they go; p2 (confirmed), p3 and v2 (newest) stay.
    assert.equal(await s.pruneCertificates!(clock.now()), 2);
    assert.deepEqual((await s.listCertificates("n1")).map((c) => c.serial).sort(), ["p2", "p3", "v2"]);
    assert.equal(await s.getCertificate("p1"), undefined);
    for (let i = 0; i < 4; i++) await s.audit({ time: new Date(clock.t + i * 1000), type: `a${i}` });
    const before = new Date(clock.t + 2000);
    const listed: string[] = [];
    for await (const e of s.auditBefore!(before)) listed.push(e.type);
    assert.deepEqual(listed, ["join.issued", "a0", "a1"]);
    assert.equal(await s.pruneAudit!(before), 3);
    assert.deepEqual((await s.listAudit()).map((e) => e.type), ["a3", "a2"]);
  });

  it("keeps reports, campaigns, kv and audit as written, readable through another handle", async () => {
    const s = await fresh();
    await s.insertToken({ id: "report", secretHash: "h", usesLeft: 2, expiresAt: new Date(clock.t + 60_000), createdAt: clock.now(), node: "n1", description: "d" });
    assert.deepEqual(await s.getToken("report"), { id: "report", secretHash: "h", usesLeft: 2, expiresAt: new Date(clock.t + 60_000), createdAt: clock.now(), node: "n1", description: "d", sans: undefined });
    await s.commitJoin({ tokenId: "report", now: clock.now(), node: "n1", facts, certificates: [cert("r1")], audit: { time: clock.now(), type: "join.issued", node: "n1" } });
    const report = { agentVersion: "9", fips: false, cryptoProvider: "default", certificates: [{ kind: "client" as const, serial: "r1", notAfter: "x", keyAlgorithm: "ECDSA-P256" }], addresses: ["10.0.0.1"], trustBundleSha256: "ab" };
    await s.recordReport("n1", report, new Date(clock.t + 5));
    const p = peer();
    const n = await p.getNode("n1");
    assert.deepEqual(n?.reported, report);
    assert.equal(n?.lastHello?.getTime(), clock.t + 5);
    await s.setKv("k", { a: 1 });
    assert.deepEqual(await p.getKv("k"), { a: 1 });
    assert.equal(await p.getKv("absent"), undefined);
    await s.createCampaign({ id: "cx", createdAt: clock.now(), state: "running", maxInFlight: 1, reason: "r", which: ["client", "serving"], keyAlgorithm: "RSA-2048" }, ["n1"]);
    await p.updateCampaign("cx", { state: "done", finishedAt: new Date(clock.t + 9) });
    assert.deepEqual(await s.getCampaign("cx"), { id: "cx", createdAt: clock.now(), state: "done", maxInFlight: 1, reason: "r", which: ["client", "serving"], keyAlgorithm: "RSA-2048", finishedAt: new Date(clock.t + 9) });
    assert.deepEqual((await s.listCampaigns()).map((c) => c.id), ["cx"]);
    await p.updateCampaignNode("cx", "n1", { state: "failed", lastError: "e", attempts: 3, nextAttemptAt: new Date(clock.t + 1) });
    await p.updateCampaignNode("cx", "n1", { nextAttemptAt: undefined });
    const cn = await s.getCampaignNode("cx", "n1");
    assert.equal(cn?.state, "failed");
    assert.equal(cn?.lastError, "e");
    assert.equal(cn?.attempts, 3);
    assert.equal(cn?.nextAttemptAt, undefined);
    for (let i = 0; i < 5; i++) await p.audit({ time: new Date(clock.t - i), type: `t${i}`, detail: { i } });
    const audit = await s.listAudit(3);
    assert.deepEqual(audit.map((a) => a.type), ["t4", "t3", "t2"], "newest recorded first, whatever the clock said");
    assert.deepEqual(audit[0].detail, { i: 4 });
  });
  });
}
