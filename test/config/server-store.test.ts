import { strict as assert } from "node:assert";
import { ServerConfig } from "../../src/config/server.js";
import { describeZodError } from "../../src/protocol/messages.js";

describe("config/server: store", () => {
  const tls = { ca: "etcd/ca.crt", cert: "etcd/n.crt", key: "etcd/n.key" };
  it("defaults to the embedded SQLite store (npm start, one server)", () => {
    assert.deepEqual(ServerConfig.parse({}).store, { kind: "sqlite" });
  });

  it("takes an etcd store with endpoints, prefix and client TLS, with defaults for the rest", () => {
    const s = ServerConfig.parse({ store: { kind: "etcd", endpoints: ["https://cp1:2379"], tls } }).store;
    assert.equal(s.kind, "etcd");
    assert.ok(s.kind === "etcd" && s.prefix === "/nodecert/" && s.leaderTtl === 5000 && s.requestTimeout === 3000);
  });

  it("refuses plain-http endpoints, an empty endpoint list, a prefix without a trailing / and a missing client certificate, naming the field", () => {
    const why = (store: unknown) => {
      const r = ServerConfig.safeParse({ store });
      assert.equal(r.success, false);
      return describeZodError(r.error!);
    };
    assert.match(why({ kind: "etcd", endpoints: ["http://cp1:2379"], tls }), /https:\/\/ \(mTLS to etcd/);
    assert.match(why({ kind: "etcd", endpoints: [], tls }), /endpoints/);
    assert.match(why({ kind: "etcd", endpoints: ["https://cp1:2379"], prefix: "/x", tls }), /must end in \//);
    assert.match(why({ kind: "etcd", endpoints: ["https://cp1:2379"], tls: { ca: "c" } }), /cert/);
    assert.match(why({ kind: "mysql" }), /kind/);
  });
});
