// The admin tables print what nodes sent with control characters escaped, so a hostile agent
// cannot erase lines, move the cursor, clear the screen or set the title of the operator's terminal.
import { strict as assert } from "node:assert";
import { nodecert, startServer, type TestServer } from "../support/helpers.js";
import { generateToken, hashSecret, parseToken } from "../../src/server/tokens.js";
import { random } from "../support/helpers.js";

const ESC_VERSION = "0.1.0\x1b[2J\x1b[1A\x1b[2K\x1b]0;pwned\x07\x9b31m";
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

describe("cli/fleet: node-fed text in admin output", function () {
  this.timeout(60_000);
  let server: TestServer;
  before(async () => {
    server = await startServer();
    // Rows written before agentVersion was restricted to printable text (or by a buggy agent).
    const token = generateToken(random);
    const { id, secret } = parseToken(token)!;
    const now = new Date();
    await server.store.insertToken({ id, secretHash: hashSecret(secret), usesLeft: 1, expiresAt: new Date(now.getTime() + 60_000), createdAt: now });
    assert.ok(await server.store.commitJoin({ tokenId: id, now, node: "esc-1", facts: { hostname: "esc-1", addresses: [], agentVersion: "x" }, certificates: [], audit: { time: now, type: "join.issued", node: "esc-1" } }));
    await server.store.recordReport("esc-1", { agentVersion: ESC_VERSION, fips: false, cryptoProvider: "x", certificates: [{ kind: "client", serial: "01", notAfter: "2027-01-01T00:00:00Z", keyAlgorithm: "ECDSA\x1b[8m" }], addresses: [] }, now);
    await server.store.createCampaign({ id: "c-esc", createdAt: now, state: "done", maxInFlight: 1, reason: "r", which: ["client"] }, ["esc-1"]);
    await server.store.updateCampaignNode("c-esc", "esc-1", { state: "failed", attempts: 1, lastError: "renewal failed\x1b[1A\x1b[2K all good" });
  });
  after(async () => server?.close());
  const admin = (...args: string[]) => nodecert([...args, "--dir", server.dir, "--server", server.url]);

  it("nodecert nodes prints an agent version with ESC sequences escaped", async () => {
    const r = await admin("nodes");
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, RAW_CONTROL, "no raw control character on the terminal");
    assert.ok(r.stdout.includes("0.1.0\\x1b[2J\\x1b[1A\\x1b[2K\\x1b]0;pwned\\x07\\x9b31m"), r.stdout);
    assert.ok(r.stdout.includes("ECDSA\\x1b[8m"));
    const json = await admin("nodes", "-o", "json");
    assert.doesNotMatch(json.stdout, RAW_CONTROL);
    assert.equal((JSON.parse(json.stdout) as { nodes: { agentVersion: string }[] }).nodes[0].agentVersion, ESC_VERSION, "JSON keeps the value");
  });

  it("nodecert rotations prints an ack's error with ESC sequences escaped", async () => {
    const r = await admin("rotations", "c-esc");
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, RAW_CONTROL);
    assert.match(r.stdout, /esc-1\s+failed\s+1\s+renewal failed\\x1b\[1A\\x1b\[2K all good/);
  });
});
