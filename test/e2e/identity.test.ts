// One identity per node: concurrent joins cannot mint the same node twice, and once a node has
// used its successor certificate, a copy of the predecessor can neither renew nor connect.
import { strict as assert } from "node:assert";
import { startServer, type TestServer } from "../support/helpers.js";
import { joinRaw, openChannel, renewRaw } from "../support/node-client.js";
import { until } from "../support/fleet.js";

describe("e2e: one identity per node, a lineage that cannot fork", function () {
  this.timeout(120_000);
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(async () => server?.close());

  it("10 concurrent joins with 10 unbound tokens for one new name: exactly one gets certificates, the rest 403 existing-node (3 rounds)", async () => {
    for (let round = 0; round < 3; round++) {
      const name = `worker-${round}`;
      const tokens = await Promise.all(Array.from({ length: 10 }, () => server.createToken()));
      const answers = await Promise.all(tokens.map((t) => joinRaw(server, name, t)));
      const ok = answers.filter((a) => a.status === 200);
      assert.equal(ok.length, 1, `round ${round}: ${answers.map((a) => a.status).join(",")}`);
      const refused = answers.filter((a) => a.status !== 200);
      assert.deepEqual(
        refused.map((a) => [a.status, (a.body as { rule?: string }).rule]),
        Array(9).fill([403, "existing-node"]),
      );
      // Only the winner's certificates exist, and only its token was spent.
      const certs = await server.store.listCertificates(name);
      assert.deepEqual(certs.filter((c) => c.kind === "client").map((c) => c.serial), [ok[0].credential!.serial]);
      const spent = (await Promise.all(tokens.map((t) => server.store.getToken(t.split(".")[0])))).filter((t) => t!.usesLeft === 0);
      assert.equal(spent.length, 1, "the losers' tokens are not spent");
      assert.ok((await server.store.listAudit(50)).some((e) => e.type === "join.denied" && e.rule === "existing-node" && e.node === name));
    }
  });

  it("S0 join → renew with S0 (S1) → S1 used on the channel → a copy of S0 can neither renew nor connect, and S1 renews", async () => {
    const name = "lineage-1";
    const s0 = (await joinRaw(server, name, await server.createToken())).credential!;
    const r1 = await renewRaw(server, name, s0);
    assert.equal(r1.status, 200, JSON.stringify(r1.body));
    const s1 = r1.credential!;
    assert.equal((await server.store.getNode(name))!.confirmedSerial, s0.serial, "renewing proved S0");
    // The node installs S1 and reconnects its channel with it: that proves S1.
    const ch = await openChannel(server, s1);
    assert.equal(ch.status, 101);
    ch.ws!.close();
    await until("S1 confirmed", async () => (await server.store.getNode(name))!.confirmedSerial === s1.serial);
    // The old file (keepFiles, a backup, a disk image) is dead now.
    const copy = await renewRaw(server, name, s0);
    assert.equal(copy.status, 403);
    assert.equal((copy.body as { rule: string }).rule, "lineage");
    const copyChannel = await openChannel(server, s0);
    assert.equal(copyChannel.status, 403);
    assert.match(copyChannel.body, /"rule":"lineage"/);
    // The real node is not locked out.
    const r2 = await renewRaw(server, name, s1);
    assert.equal(r2.status, 200, JSON.stringify(r2.body));
    assert.equal((await server.store.getNode(name))!.confirmedSerial, s1.serial);
    const again = await openChannel(server, r2.credential!);
    assert.equal(again.status, 101);
    again.ws!.close();
  });

  it("until the successor is used, the predecessor may still renew (its answer may have been lost)", async () => {
    const name = "lineage-2";
    const s0 = (await joinRaw(server, name, await server.createToken())).credential!;
    assert.equal((await renewRaw(server, name, s0)).status, 200);
    const retry = await renewRaw(server, name, s0);
    assert.equal(retry.status, 200, "S0 is the confirmed serial: a node whose answer got lost renews again");
  });

  it("an old copy and the newest certificate renewing at the same moment: exactly one wins", async () => {
    for (let round = 0; round < 3; round++) {
      const name = `race-${round}`;
      const s0 = (await joinRaw(server, name, await server.createToken())).credential!;
      const s1 = (await renewRaw(server, name, s0)).credential!; // confirmed S0, newest S1: both may act
      const [a, b] = await Promise.all([renewRaw(server, name, s0), renewRaw(server, name, s1)]);
      assert.deepEqual([a.status, b.status].sort(), [200, 403], `round ${round}: ${a.status} ${b.status}`);
      const loser = a.status === 403 ? a : b;
      assert.equal((loser.body as { rule: string }).rule, "lineage");
      // The lineage did not fork: one newest certificate, and it is the winner's.
      const winner = a.status === 200 ? a : b;
      assert.equal((await server.store.latestCertificates(name, "client", 1))[0].serial, winner.credential!.serial);
    }
  });
});
