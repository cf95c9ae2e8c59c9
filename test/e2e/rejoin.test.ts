// Re-joining a node that already exists: an unbound token cannot take it over (or lift its
// eviction); a token bound to the node can, and the running agent resumes by itself.
import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { nodeLayout } from "../../src/agent/layout.js";
import { certificateInfo } from "../../src/pki/certificate-info.js";
import { nodecert, startServer } from "../support/helpers.js";
import { startFleetAgent, until } from "../support/fleet.js";

const serialOf = (root: string) => certificateInfo(readFileSync(nodeLayout(root).current("client"), "utf8")).serial;

describe("e2e: re-joining an existing node", function () {
  this.timeout(120_000);
  const closers: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
  });

  it("an unbound token cannot take over an existing node's name: 403 rule existing-node, token not spent, node untouched", async () => {
    const server = await startServer();
    closers.push(() => server.close());
    const a = await startFleetAgent(server, "taken-1");
    closers.push(() => a.agent.close());
    const token = await server.createToken();
    const rogueRoot = nodeLayout(a.root).root + "-rogue";
    const r = await nodecert(["join", "--server", server.url, "--token", token, "--ca-cert-hash", server.pin, "--root", rogueRoot, "--node-name", "taken-1", "--address", "127.0.0.1"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /HTTP 403 denied \(rule existing-node\): node "taken-1" already joined .*create a token bound to it with 'nodecert token create --node taken-1'/);
    // The real node still renews: its lineage was not reset by the attempt.
    const renew = await a.agent.renewer.renew(["client"], { force: true });
    assert.equal(renew.error, undefined);
    assert.ok((await server.store.listAudit(100)).some((e) => e.type === "join.denied" && e.rule === "existing-node"));
    assert.equal((await server.store.getToken(token.split(".")[0]))?.usesLeft, 1, "a denied join does not spend the token");
  });

  it("an evicted node comes back only with a token bound to it; the running agent notices the re-join, renews and reconnects", async () => {
    const server = await startServer();
    closers.push(() => server.close());
    const a = await startFleetAgent(server, "ev-2");
    closers.push(() => a.agent.close());
    await until("connected", () => server.hub.connected("ev-2"));
    const ev = await nodecert(["evict", "ev-2", "--reason", "suspected compromise", "--dir", server.dir, "--server", server.url]);
    assert.equal(ev.code, 0, ev.stderr);
    await until("agent knows", async () => (await a.agent.readiness()).reason.includes("evicted"));
    const status = await nodecert(["status", "--root", a.root]);
    assert.match(status.stdout, /EVICTED: .*suspected compromise \(to re-join: 'nodecert token create --node ev-2' on the control plane, then 'nodecert join' here\)/);

    const join = (token: string) => nodecert(["join", "--server", server.url, "--token", token, "--ca-cert-hash", server.pin, "--root", a.root, "--node-name", "ev-2", "--address", "127.0.0.1"]);
    const unbound = await join(await server.createToken());
    assert.notEqual(unbound.code, 0);
    assert.match(unbound.stderr, /rule existing-node\): node "ev-2" already joined .*evicted at/);
    assert.ok((await server.store.getNode("ev-2"))?.evictedAt, "still evicted");

    const before = serialOf(a.root);
    const bound = await join(await server.createToken({ node: "ev-2" }));
    assert.equal(bound.code, 0, bound.stderr);
    assert.notEqual(serialOf(a.root), before, "new certificates installed");
    assert.equal((await server.store.getNode("ev-2"))?.evictedAt, undefined, "the bound re-join lifted the eviction");
    assert.ok((await server.store.listAudit(100)).some((e) => e.type === "join.rejoined" && e.node === "ev-2"));
    assert.doesNotMatch((await nodecert(["status", "--root", a.root])).stdout, /EVICTED/);

    // The agent, still running, picks it up at its next check and is ready and connected again.
    await a.agent.tick();
    assert.equal((await a.agent.readiness()).ready, true, (await a.agent.readiness()).reason);
    assert.ok(a.lines.some((l) => l.includes("eviction lifted")));
    await until("reconnected", () => server.hub.connected("ev-2"));
    const renew = await a.agent.renewer.renew(["client"], { force: true });
    assert.equal(renew.error, undefined, "renewal works again");
  });
});
