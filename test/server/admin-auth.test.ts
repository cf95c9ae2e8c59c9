import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import path from "node:path";
import { requestJson } from "../../src/util/https-client.js";
import { nodeLayout } from "../../src/agent/layout.js";
import { nodecert, startServer, tempDir } from "../support/helpers.js";

describe("server: no admin endpoint answers without the admin certificate", () => {
  it("refuses anonymous callers (401) and node certificates (403) on every admin route", async () => {
    const server = await startServer();
    try {
      const root = path.join(tempDir(), "node");
      const j = await nodecert(["join", "--server", server.url, "--token", await server.createToken(), "--ca-cert-hash", server.pin, "--root", root, "--node-name", "n1", "--address", "127.0.0.1"]);
      assert.equal(j.code, 0, j.stderr);
      const nodePem = readFileSync(nodeLayout(root).current("client"), "utf8");
      const routes: [string, string, unknown][] = [
        ["GET", "/v1/admin/nodes", undefined],
        ["POST", "/v1/admin/nodes/n1/evict", {}],
        ["POST", "/v1/admin/campaigns", { all: true }],
        ["GET", "/v1/admin/campaigns", undefined],
        ["GET", "/v1/admin/campaigns/abc", undefined],
        ["POST", "/v1/admin/ca/rotate", {}],
        ["POST", "/v1/admin/ca/advance", {}],
        ["GET", "/v1/admin/ca", undefined],
        ["POST", "/v1/admin/tokens", { ttlSeconds: 60 }],
      ];
      for (const [method, route, body] of routes) {
        const anon = await requestJson(server.url + route, { method, body, tls: { ca: server.authority.trustBundle } });
        assert.equal(anon.status, 401, `${method} ${route} anonymous`);
        const asNode = await requestJson(server.url + route, { method, body, tls: { ca: server.authority.trustBundle, cert: nodePem, key: nodePem } });
        assert.equal(asNode.status, 403, `${method} ${route} with a node certificate`);
      }
      assert.equal((await server.store.getNode("n1"))?.evictedAt, undefined, "nothing happened");
      assert.deepEqual(await server.store.listCampaigns(), []);
      assert.equal(await server.caRotation.state(), undefined);
    } finally {
      await server.close();
    }
  });
});
