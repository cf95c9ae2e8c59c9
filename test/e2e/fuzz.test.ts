// A bounded, seeded fuzz run on every test: mutated join bodies against the HTTPS API and fuzzed
// frames on the fleet channel in both directions (scripts/fuzz.ts runs the long version). 0 5xx,
// 0 hangs, 0 crashes, 0 internal errors; every frame the protocol refuses is closed with 1008.
// Replay a failure with NODECERT_FUZZ_SEED=<seed printed below>.
import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import path from "node:path";
import { startServer, quietLogger, type TestServer } from "../support/helpers.js";
import { startFleetAgent } from "../support/fleet.js";
import { joinRaw, nodeFacts } from "../support/node-client.js";
import { fuzzAgentChannel, fuzzJoin, fuzzServerChannel } from "../../scripts/fuzz-cases.js";
import { createNodeCsr } from "../../src/pki/csr.js";
import { generateKeyPair } from "../../src/pki/keys.js";
import { runAgent } from "../../src/agent/daemon.js";
import { AgentConfig } from "../../src/config/agent.js";
import { nodeIdentity } from "../../src/agent/identity.js";

const SEED = Number(process.env.NODECERT_FUZZ_SEED ?? 20261202);

describe("e2e: fuzzing the control plane and the channel", function () {
  this.timeout(600_000);
  let server: TestServer;
  let uncaught: unknown[];
  const onUncaught = (e: unknown) => uncaught.push(e);
  before(async () => {
    console.log(`      seed ${SEED}`);
    uncaught = [];
    process.on("uncaughtException", onUncaught);
    process.on("unhandledRejection", onUncaught);
    // Limits high enough that the fuzz reaches the message handling, not the rate limiter.
    server = await startServer({ overrides: { tokens: { maxFailures: 1_000_000, failureWindow: "1m" }, channel: { messageBurst: 1_000_000, messageRate: 1_000_000 } } });
  });
  after(async () => {
    process.off("uncaughtException", onUncaught);
    process.off("unhandledRejection", onUncaught);
    await server?.close();
  });

  const internalErrors = (from: number) => server.logLines.slice(from).filter((l) => /"level":"error"/.test(l));

  it("5,000 mutated join bodies: every answer below 500 with a reason, none hangs, the server keeps serving", async () => {
    const keys = await generateKeyPair("ECDSA-P256");
    const name = "fuzz-node";
    const base = {
      v: 1,
      nodeName: name,
      facts: { ...nodeFacts(name), names: [name] },
      csrs: { client: await createNodeCsr({ kind: "client", nodeName: name, keys }), serving: await createNodeCsr({ kind: "serving", nodeName: name, keys, sans: [name, "127.0.0.1"] }) },
    };
    const token = await server.createToken({ uses: 100_000 });
    const mark = server.logLines.length;
    const r = await fuzzJoin({ url: server.url, ca: server.authority.trustBundle, token, base, cases: 5000, seed: SEED });
    console.log(`      ${r.cases} bodies in ${(r.ms / 1000).toFixed(1)} s: ${JSON.stringify(r.byStatus)}`);
    assert.equal(r.cases, 5000);
    assert.deepEqual(r.failures.slice(0, 5), [], `${r.failures.length} failures`);
    assert.equal(r.hangs, 0);
    assert.ok(Object.keys(r.byStatus).length >= 4, "the mutations reached several outcomes (not one early refusal)");
    assert.ok((r.byStatus[400] ?? 0) > 1000 && (r.byStatus[403] ?? 0) > 0, "validation and policy were both reached");
    assert.deepEqual(internalErrors(mark), []);
    assert.deepEqual(uncaught, []);
  });

  it("5,000 fuzzed frames from a node: each refused one closed with 1008 (invalid UTF-8: 1007), each accepted one left open, 0 internal errors", async () => {
    const cred = (await joinRaw(server, "fuzz-ch-1", await server.createToken())).credential!;
    const mark = server.logLines.length;
    const r = await fuzzServerChannel({ url: server.url, ca: server.authority.trustBundle, pem: cred.pem, nodeName: "fuzz-ch-1", frames: 5000, seed: SEED });
    console.log(`      ${r.frames} frames in ${(r.ms / 1000).toFixed(1)} s over ${r.connections} connections: ${r.accepted} accepted, closed ${JSON.stringify(r.closed)}`);
    assert.equal(r.frames, 5000);
    assert.deepEqual(r.mismatches.slice(0, 5), [], `${r.mismatches.length} mismatches`);
    assert.ok(r.accepted > 500 && (r.closed[1008] ?? 0) > 500, "both sides of the protocol were exercised");
    assert.deepEqual(internalErrors(mark), []);
    assert.deepEqual(uncaught, []);
    assert.ok(server.hub.violations.get("invalid")! > 0);
  });

  it("300 fuzzed frames from an impostor control plane to a real agent: refused ones closed with 1008, the agent keeps reconnecting, nothing installed", async () => {
    const a = await startFleetAgent(server, "fuzz-agent-1");
    await a.agent.close();
    const caBefore = readFileSync(path.join(a.root, "etc/kubernetes/pki/ca.crt"), "utf8");
    const tls = { cert: readFileSync(server.paths.tlsCert, "utf8"), key: readFileSync(server.paths.tlsKey, "utf8") };
    const r = await fuzzAgentChannel({
      tls,
      frames: 300,
      seed: SEED,
      startAgent: (url) =>
        runAgent({
          config: AgentConfig.parse({ root: a.root, server: url, caCertHash: server.pin, nodeName: "fuzz-agent-1", addresses: { only: ["127.0.0.1"] }, healthListen: "127.0.0.1:0", hooks: [], backoff: { initial: "1h", max: "1h" }, channel: { reconnectInitial: "20ms", reconnectMax: "100ms" } }),
          logger: quietLogger(),
          identity: () => nodeIdentity({ nodeName: "fuzz-agent-1", addresses: { includeLoopback: true, includeLinkLocal: false, extra: [], only: ["127.0.0.1"] }, facts: async () => ({}) }),
          scheduler: () => ({ stop() {}, execute: async () => undefined }),
        }),
    });
    console.log(`      ${r.frames} frames in ${(r.ms / 1000).toFixed(1)} s over ${r.connections} connections: ${r.accepted} accepted, closed ${JSON.stringify(r.closed)}`);
    assert.equal(r.frames, 300);
    assert.deepEqual(r.mismatches.slice(0, 5), [], `${r.mismatches.length} mismatches`);
    assert.ok((r.closed[1008] ?? 0) > 50);
    assert.equal(readFileSync(path.join(a.root, "etc/kubernetes/pki/ca.crt"), "utf8"), caBefore, "no pushed bundle was installed");
    assert.deepEqual(uncaught, []);
  });
});

