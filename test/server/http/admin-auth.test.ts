import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import path from "node:path";
import { requestJson } from "../../../src/platform/https-client.js";
import { nodeLayout } from "../../../src/agent/layout.js";
import { nodecert, startServer, tempDir } from "../../support/helpers.js";

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
        ["GET", "/v1/admin/fleet", undefined],
        ["GET", "/v1/admin/nodes/n1", undefined],
        ["GET", "/v1/admin/audit", undefined],
        ["POST", "/v1/admin/campaigns/abc/cancel", {}],
      ];
      // The same routes spelled so the router still matches them but a raw-URL check would not.
      const spellings = routes.flatMap(([m, r, b]): [string, string, unknown][] => [
        [m, r, b],
        [m, r.replace("/admin/", "/%61dmin/"), b],
        [m, r.replace("/v1/", "/%761/"), b],
        [m, r.replace("/admin/", "/ADMIN/"), b],
        [m, r + "?x=1", b],
      ]);
      for (const [method, route, body] of spellings) {
        const anon = await requestJson(server.url + route, { method, body, tls: { ca: server.authority.trustBundle } });
        // 404 is fine for a spelling the router does not match (no handler ran); anything else must be 401.
        if (anon.status === 404) continue;
        assert.equal(anon.status, 401, `${method} ${route} anonymous`);
        const asNode = await requestJson(server.url + route, { method, body, tls: { ca: server.authority.trustBundle, cert: nodePem, key: nodePem } });
        assert.equal(asNode.status, 403, `${method} ${route} with a node certificate`);
      }
      assert.equal((await server.store.getNode("n1"))?.evictedAt, undefined, "nothing happened");
      assert.deepEqual(await server.store.listCampaigns(), []);
      assert.equal(await server.caRotation.state(), undefined);
      // The encoded spellings do reach the routes (so the loop above tested something).
      const admin = await nodecert(["nodes", "--dir", server.dir, "--server", server.url]);
      assert.equal(admin.code, 0, admin.stderr);
      const adminTls = { ca: server.authority.trustBundle, cert: readFileSync(path.join(server.dir, "admin", "admin.crt"), "utf8"), key: readFileSync(path.join(server.dir, "admin", "admin.key"), "utf8") };
      const encoded = await requestJson(server.url + "/v1/%61dmin/nodes", { tls: adminTls });
      assert.equal(encoded.status, 200, JSON.stringify(encoded.body));
      assert.equal((encoded.body as { nodes: { name: string }[] }).nodes[0].name, "n1");
    } finally {
      await server.close();
    }
  });
});
