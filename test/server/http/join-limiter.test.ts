// One node retrying a spent token must not rate-limit its neighbours behind the same NAT: failures
// with a known token count against that token id; guesses still count against the source.
import { strict as assert } from "node:assert";
import { startServer, type TestServer } from "../../support/helpers.js";
import { joinRaw } from "../../support/node-client.js";
import { requestJson } from "../../../src/platform/https-client.js";

describe("server/http: the join limiter counts per token id as well as per source", function () {
  this.timeout(60_000);
  let server: TestServer;
  before(async () => {
    server = await startServer({ overrides: { tokens: { maxFailures: 3, failureWindow: "1m" } } });
  });
  after(async () => server?.close());

  it("a node retrying a spent token is limited on that token; a neighbour from the same source with a valid token joins", async () => {
    const spent = await server.createToken();
    assert.equal((await joinRaw(server, "first", spent)).status, 200);
    // Another node keeps retrying it (a different key: no retry of an unconfirmed join).
    const codes: number[] = [];
    for (let i = 0; i < 6; i++) codes.push((await joinRaw(server, "stale", spent)).status);
    assert.deepEqual(codes, [401, 401, 401, 429, 429, 429]);
    const limited = await joinRaw(server, "stale", spent);
    assert.match((limited.body as { reason: string }).reason, new RegExp(`too many failed attempts with bootstrap token ${spent.split(".")[0]}; retry in \\d+s`));
    // Same source (127.0.0.1), a valid token: through.
    const neighbour = await joinRaw(server, "neighbour", await server.createToken());
    assert.equal(neighbour.status, 200, JSON.stringify(neighbour.body));
  });

  it("guessed tokens still block the source, for valid tokens too", async () => {
    const s = await startServer({ overrides: { tokens: { maxFailures: 3, failureWindow: "1m" } } });
    try {
      for (let i = 0; i < 3; i++) {
        const r = await requestJson(`${s.url}/v1/join`, { body: {}, headers: { authorization: `Bearer abcde${i}.0123456789abcdef` }, tls: { ca: s.authority.trustBundle } });
        assert.equal(r.status, 401);
      }
      assert.equal((await joinRaw(s, "after-guesses", await s.createToken())).status, 429);
    } finally {
      await s.close();
    }
  });
});
