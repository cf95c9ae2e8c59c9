import { strict as assert } from "node:assert";
import { serverFor, serverUrls } from "../../src/agent/servers.js";
import { AgentConfig } from "../../src/config/agent.js";

describe("agent/servers: one control-plane URL or a list of replicas", () => {
  it("accepts a single URL (as before) or a list in agent.yaml, and refuses a list with a non-URL", () => {
    assert.equal(AgentConfig.parse({ server: "https://a:9443" }).server, "https://a:9443");
    assert.deepEqual(AgentConfig.parse({ server: ["https://a:9443", "https://b:9443"] }).server, ["https://a:9443", "https://b:9443"]);
    assert.equal(AgentConfig.safeParse({ server: ["https://a:9443", "not a url"] }).success, false);
    assert.equal(AgentConfig.safeParse({ server: [] }).success, false);
  });

  it("each consecutive failed attempt goes to the next URL; after a success the first is preferred again", () => {
    const list = ["https://a", "https://b", "https://c"];
    assert.deepEqual([0, 1, 2, 3, 4].map((n) => serverFor(list, n)), ["https://a", "https://b", "https://c", "https://a", "https://b"]);
    assert.equal(serverFor("https://only", 7), "https://only");
    assert.equal(serverFor(undefined, 0), undefined);
    assert.deepEqual(serverUrls("https://x"), ["https://x"]);
  });
});
