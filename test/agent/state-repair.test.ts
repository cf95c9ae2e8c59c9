// Damaged agent state: each corruption an operator's bad day produces is rebuilt from the files on
// disk (state.json from the installed pairs, ca.crt from the pinned bundle), or named with the fix;
// a client link pointing at the serving pair is caught at start.
import { strict as assert } from "node:assert";
import { existsSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { runAgent, type RunningAgent } from "../../src/agent/daemon.js";
import { AgentConfig } from "../../src/config/agent.js";
import { nodeIdentity } from "../../src/agent/identity.js";
import { nodeLayout, type NodeLayout } from "../../src/agent/layout.js";
import { DamagedStateError, readState } from "../../src/agent/state.js";
import { repairStateFile, repairTrustBundle } from "../../src/agent/state-repair.js";
import { recoverOnStartup } from "../../src/agent/recover.js";
import { certificatePin } from "../../src/pki/pin.js";
import { certificateInfo } from "../../src/pki/certificate-info.js";
import { writeFileAtomic } from "../../src/platform/files.js";
import { captureLogger, freePort, startServer, tempDir, type TestServer } from "../support/helpers.js";

describe("agent/state-repair: damaged state is rebuilt from the files on disk, or named with the fix", function () {
  this.timeout(120_000);
  let server: TestServer;
  const running: RunningAgent[] = [];
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.close();
  });
  afterEach(async () => {
    for (const a of running.splice(0)) await a.close().catch(() => undefined);
  });

  function config(root: string, o: { tokenFile?: string; server?: string } = {}): AgentConfig {
    return AgentConfig.parse({ root, server: o.server ?? server.url, caCertHash: server.pin, tokenFile: o.tokenFile, nodeName: path.basename(root), addresses: { only: ["127.0.0.1"] }, healthListen: "127.0.0.1:0", hooks: [], channel: { enabled: false } });
  }

  async function start(root: string, o: { tokenFile?: string; server?: string } = {}): Promise<RunningAgent> {
    const name = path.basename(root);
    const agent = await runAgent({
      config: config(root, o),
      logger: captureLogger(name).logger,
      identity: () => nodeIdentity({ nodeName: name, addresses: { includeLoopback: true, includeLinkLocal: false, extra: [], only: ["127.0.0.1"] }, facts: async () => ({}) }),
      scheduler: () => ({ stop() {}, execute: async () => undefined }),
    });
    running.push(agent);
    return agent;
  }

  /** A joined node, its agent stopped: the state to damage. */
  async function joinedNode(name: string): Promise<{ root: string; layout: NodeLayout; tokenId: string }> {
    const root = path.join(tempDir(), name);
    const tokenFile = path.join(tempDir(), "token");
    const token = await server.createToken();
    await writeFileAtomic(tokenFile, token + "\n");
    const a = await start(root, { tokenFile });
    await a.joined;
    await a.close();
    running.splice(running.indexOf(a), 1);
    // No token from here on: only the files on disk can bring the node back.
    return { root, layout: nodeLayout(root), tokenId: token.split(".")[0] };
  }

  const serial = (l: NodeLayout, kind: "client" | "serving") => certificateInfo(readFileSync(l.current(kind), "utf8")).serial;

  for (const [what, damage] of [
    ["truncated", (t: string) => t.slice(0, Math.floor(t.length / 2))],
    ["garbage", () => "\u0000\u0013\u00ff binary garbage \u0001"],
    ["half-written (empty)", () => ""],
    ["wrong schema", () => JSON.stringify({ schemaVersion: 1, nodeName: 42, certificates: "none" })],
  ] as const) {
    it(`${what} state.json: readState names the file; the agent starts, rebuilds it from the installed pairs and renews over mTLS`, async () => {
      const n = await joinedNode(`damaged-${what.split(" ")[0]}`);
      const before = await readState(n.layout);
      writeFileSync(n.layout.stateFile, damage(readFileSync(n.layout.stateFile, "utf8")));
      await assert.rejects(readState(n.layout), (e: Error) => e instanceof DamagedStateError && e.message.includes(n.layout.stateFile) && /restart the agent to rebuild it/.test(e.message));
      const agent = await start(n.root);
      const after = (await readState(n.layout))!;
      assert.equal(after.nodeName, before!.nodeName);
      assert.equal(after.server, before!.server);
      assert.equal(after.caPin, before!.caPin);
      assert.equal(after.apiServer, before!.apiServer);
      assert.equal(after.certificates.client!.serial, serial(n.layout, "client"));
      assert.equal(after.certificates.serving!.serial, serial(n.layout, "serving"));
      assert.ok(readdirSync(n.layout.stateDir).some((f) => f.startsWith("state.json.damaged-")), "the damaged copy is kept for the operator");
      await agent.tick();
      assert.equal((await agent.readiness()).ready, true);
      const out = await agent.renewer.renew(["client"], { force: true });
      assert.equal(out.error, undefined);
      assert.equal(out.renewed.length, 1);
    });
  }

  it("deleted state.json: rebuilt from the pairs, no re-join (the node keeps its lineage)", async () => {
    const n = await joinedNode("deleted-state");
    const r0 = serial(n.layout, "client");
    rmSync(n.layout.stateFile);
    const r = await repairStateFile(n.layout, { server: server.url, caCertHash: server.pin, now: new Date() });
    assert.equal(r?.action, "rebuilt");
    assert.equal(r?.file, n.layout.stateFile);
    assert.match(r!.message, /missing while certificates are installed; rebuilt it from .*kubelet-client-.*\.pem/);
    rmSync(n.layout.stateFile);
    const agent = await start(n.root);
    assert.equal((await readState(n.layout))!.certificates.client!.serial, r0);
    const out = await agent.renewer.renew(["client", "serving"], { force: true });
    assert.equal(out.error, undefined, "renewed over mTLS, not 'no client certificate and no bootstrap token'");
    assert.equal((await server.store.listCertificates(path.basename(n.root))).length, 4, "2 from the join, 2 renewed: no new join");
  });

  it("damaged state.json and no usable client pair: set aside, and the message names the file and the fix", async () => {
    const n = await joinedNode("unrecoverable");
    writeFileSync(n.layout.stateFile, "{");
    rmSync(n.layout.current("client"));
    for (const f of readdirSync(n.layout.pkiDir).filter((x) => x.startsWith("kubelet-client-"))) rmSync(path.join(n.layout.pkiDir, f));
    const r = await repairStateFile(n.layout, { server: server.url, caCertHash: server.pin, now: new Date() });
    assert.equal(r?.action, "moved-aside");
    assert.ok(r!.message.startsWith(n.layout.stateFile));
    assert.match(r!.message, /cannot be rebuilt: no usable client pair at .*kubelet-client-current\.pem is needed; moved it to .*state\.json\.damaged-.*'nodecert join'/);
    assert.equal(existsSync(n.layout.stateFile), false);
    // The agent then starts as a node that has not joined, instead of exiting on the JSON error.
    const agent = await start(n.root);
    await agent.tick();
    assert.equal((await agent.readiness()).ready, false);
  });

  it("deleted ca.crt: fetched again from the server and checked against the pin; a server that is down is named, and the next check fetches it", async () => {
    const n = await joinedNode("no-ca");
    rmSync(n.layout.caFile);
    const state = await readState(n.layout);
    const down = await repairTrustBundle(n.layout, { server: `https://127.0.0.1:${await freePort()}`, caCertHash: server.pin, now: new Date(), state });
    assert.equal(down?.action, "left");
    assert.match(down!.message, new RegExp(`^${n.layout.caFile.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")} is missing and could not be fetched from .*ECONNREFUSED.*copy the cluster CA certificate there \\(its pin is sha256:`));
    // The agent started while the CA file is gone gets it back on its first check.
    const agent = await start(n.root);
    await agent.tick();
    assert.equal(certificatePin(readFileSync(n.layout.caFile, "utf8")), server.pin);
    assert.equal(agent.renewer.lastDecisions.find((d) => d.kind === "client")!.code, "ok");
    assert.equal((await agent.readiness()).ready, true);
  });

  it("kubelet-client-current.pem pointed at the serving pair: wrong-EKU urgent, repointed at the newest client pair at start", async () => {
    const n = await joinedNode("wrong-eku");
    const clientTarget = readlinkSync(n.layout.current("client"));
    rmSync(n.layout.current("client"));
    symlinkSync(readlinkSync(n.layout.current("serving")), n.layout.current("client"));
    const actions = await recoverOnStartup(n.layout, new Date());
    assert.equal(readlinkSync(n.layout.current("client")), clientTarget);
    assert.ok(actions.some((a) => /pointed kubelet-client-current\.pem at kubelet-client-.*wrong extended key usage/.test(a)), actions.join("\n"));
    // Again, but with no client pair left to fall back to: the running agent calls it urgent at start.
    rmSync(n.layout.current("client"));
    for (const f of readdirSync(n.layout.pkiDir).filter((x) => x.startsWith("kubelet-client-"))) rmSync(path.join(n.layout.pkiDir, f));
    symlinkSync(readlinkSync(n.layout.current("serving")), n.layout.current("client"));
    const agent = await start(n.root);
    await agent.tick();
    const client = agent.renewer.lastDecisions.find((d) => d.kind === "client")!;
    assert.equal(client.code, "wrong-eku");
    assert.equal(client.action, "urgent");
    assert.equal((await agent.readiness()).ready, false);
  });
});
