// The hub's bookkeeping under a misbehaving or failing peer: unacknowledged commands do not pile
// up, acks only count on the connection the command went out on, and a store failure while
// recording a hello is logged instead of crashing the server. Peers speak the real protocol.
import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import WebSocket from "ws";
import { nodeLayout } from "../../../src/agent/layout.js";
import { CHANNEL_PATH } from "../../../src/server/fleet/hub.js";
import { startServer, type TestServer } from "../../support/helpers.js";
import { startFleetAgent, until } from "../../support/fleet.js";

describe("server/hub: bookkeeping with misbehaving peers", function () {
  this.timeout(60_000);
  let server: TestServer;
  let pem: string;
  before(async () => {
    server = await startServer();
    const a = await startFleetAgent(server, "hub-1");
    await a.agent.close(); // the test speaks for the node with its certificate
    pem = readFileSync(nodeLayout(a.root).current("client"), "utf8");
  });
  after(async () => server?.close());

  const open = async () => {
    const ws = new WebSocket(`wss://127.0.0.1:${server.port}${CHANNEL_PATH}`, { ca: server.authority.trustBundle, cert: pem, key: pem, minVersion: "TLSv1.3" });
    const received: { id: string; type: string }[] = [];
    ws.on("message", (d) => received.push(JSON.parse(d.toString())));
    await new Promise((r, j) => (ws.once("open", r), ws.once("error", j)));
    await until("registered", () => server.hub.connected("hub-1"));
    return { ws, received };
  };

  it("commands a peer never acknowledges are forgotten when its connection closes", async () => {
    const { ws, received } = await open();
    const before = server.hub.unackedCount;
    for (let i = 0; i < 20; i++) server.hub.send("hub-1", { type: "trust-bundle", bundle: server.authority.trustBundle });
    await until("delivered", () => received.length === 20);
    assert.equal(server.hub.unackedCount, before + 20);
    ws.close();
    await until("forgotten", () => server.hub.unackedCount === before);
  });

  it("an ack counts only on the connection its command went out on", async () => {
    const first = await open();
    const id = server.hub.send("hub-1", { type: "rotate", which: ["client"], reason: "test" })!;
    await until("delivered", () => first.received.some((m) => m.id === id));
    const acks: string[] = [];
    server.hub.on("ack", (_n, a) => acks.push(a.commandId));
    // A second connection for the same node replaces the first; an ack for the old command on it is ignored.
    const second = await open();
    second.ws.send(JSON.stringify({ v: 1, id: "x1", type: "ack", commandId: id, result: "ok" }));
    await until("logged", () => server.logLines.some((l) => l.includes("ignoring an ack for a command this server never sent") && l.includes(id)));
    assert.equal(acks.length, 0, "the stale ack was not counted");
    // A command sent on the live connection is acknowledged normally.
    const id2 = server.hub.send("hub-1", { type: "rotate", which: ["client"], reason: "test" })!;
    second.ws.send(JSON.stringify({ v: 1, id: "x2", type: "ack", commandId: id2, result: "ok" }));
    await until("acked", () => acks.includes(id2));
    second.ws.close();
  });

  it("a hello whose agent version holds control characters is a schema violation: closed with 1008, nothing recorded", async () => {
    const { ws } = await open();
    const before = (await server.store.getNode("hub-1"))?.reported;
    const closed = new Promise<number>((r) => ws.once("close", (code) => r(code)));
    ws.send(JSON.stringify({ v: 1, id: "h-esc", type: "hello", agentVersion: "0.1.0\x1b[2J\x1b]0;pwned\x07", certificates: [], crypto: { provider: "x", fips: false }, addresses: [] }));
    assert.equal(await closed, 1008);
    assert.deepEqual((await server.store.getNode("hub-1"))?.reported, before, "the report was not replaced");
    // The same in a join's facts: refused by schema with the field named.
    const { NodeFacts } = await import("../../../src/protocol/messages.js");
    const r = NodeFacts.safeParse({ hostname: "h", addresses: [], agentVersion: "1\x9b2" });
    assert.equal(r.success, false);
    assert.match(JSON.stringify(r.error?.issues), /agentVersion.*must be printable ASCII/);
  });

  it("a store failure while recording a hello is logged; the server keeps serving", async () => {
    const original = server.store.recordReport.bind(server.store);
    server.store.recordReport = async () => {
      throw new Error("SQLITE_FULL: database or disk is full");
    };
    try {
      const { ws } = await open();
      ws.send(JSON.stringify({ v: 1, id: "h1", type: "hello", agentVersion: "test", certificates: [], crypto: { provider: "x", fips: false }, addresses: [] }));
      await until("logged", () => server.logLines.some((l) => l.includes("could not record an agent's hello") && l.includes("SQLITE_FULL")));
      assert.equal(ws.readyState, WebSocket.OPEN);
      ws.close();
    } finally {
      server.store.recordReport = original;
    }
    const again = await open();
    assert.equal(again.ws.readyState, WebSocket.OPEN, "still accepting connections");
    again.ws.close();
  });
});
