// A -current.pem that exists but cannot be read (EACCES, EIO, EISDIR...) is reported as what it
// is. It is never "missing": the agent does not spend its bootstrap token on a re-join (that would
// start a new lineage for a node whose disk or permissions broke), startup recovery does not point
// it at an older file, and `status` / `needs-renewal` say so.
import { strict as assert } from "node:assert";
import { chmodSync, mkdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { nodecert, requireTool, run, BIN, startServer, tempDir, type TestServer } from "../support/helpers.js";
import { startFleetAgent, type FleetAgent } from "../support/fleet.js";
import { nodeLayout } from "../../src/agent/layout.js";
import { readCurrentOutcome } from "../../src/agent/install.js";
import { recoverOnStartup } from "../../src/agent/recover.js";
import { writeFileAtomic } from "../../src/platform/files.js";

describe("agent: an unreadable certificate is reported, never re-joined over", function () {
  this.timeout(90_000);
  let server: TestServer;
  let a: FleetAgent;
  let spare: string;
  before(async () => {
    server = await startServer();
    a = await startFleetAgent(server, "unread-1");
    // A fresh token in tokenFile: a re-join would succeed, so only the agent's decision stops it.
    spare = await server.createToken();
    await writeFileAtomic(path.join(a.root, "token"), spare + "\n");
  });
  after(async () => {
    await a?.agent.close();
    await server?.close();
  });

  const tokenUses = async () => (await server.store.getToken(spare.split(".")[0]))!.usesLeft;

  it("EISDIR in place of kubelet-client-current.pem: decision 'unreadable', the renewal fails with the reason, the token is not spent, status and needs-renewal say so", async () => {
    const l = nodeLayout(a.root);
    const target = readlinkSync(l.current("client"));
    const certsBefore = (await server.store.listCertificates("unread-1")).length;
    rmSync(l.current("client"));
    mkdirSync(l.current("client"));
    try {
      const read = await readCurrentOutcome(l, "client");
      assert.equal(read.state, "unreadable");
      assert.equal(read.state === "unreadable" && read.errno, "EISDIR");
      const out = (await a.agent.tick()) as { error?: string };
      const client = a.agent.renewer.lastDecisions.find((x) => x.kind === "client")!;
      assert.equal(client.code, "unreadable");
      assert.equal(client.action, "urgent");
      assert.match(out.error ?? "", /certificate cannot be read: cannot read .*kubelet-client-current\.pem: EISDIR.*not re-joining/);
      assert.equal(await tokenUses(), 1, "the bootstrap token was not spent on a re-join");
      assert.equal((await server.store.listCertificates("unread-1")).length, certsBefore, "nothing was issued");
      assert.equal((await a.agent.readiness()).ready, false);
      const status = await nodecert(["status", "--root", a.root]);
      assert.equal(status.code, 1);
      assert.match(status.stdout, /kubelet-client\s+<unreadable>.*unreadable: cannot read .*EISDIR/);
      const config = path.join(tempDir(), "agent.yaml");
      writeFileSync(config, YAML.stringify({ root: a.root, nodeName: "unread-1", addresses: { only: ["127.0.0.1"] } }));
      const needs = await nodecert(["needs-renewal", "--config", config]);
      assert.equal(needs.code, 2, needs.stdout + needs.stderr);
      assert.match(needs.stdout, /client: urgent: certificate cannot be read/);
      // Startup recovery leaves it alone instead of pointing it at an older file.
      const actions = await recoverOnStartup(l, new Date());
      assert.ok(actions.some((x) => /left kubelet-client-current\.pem as it is: cannot read/.test(x)), actions.join("; "));
    } finally {
      rmSync(l.current("client"), { recursive: true });
      symlinkSync(target, l.current("client"));
    }
    await a.agent.tick();
    assert.equal(a.agent.renewer.lastDecisions.find((x) => x.kind === "client")!.code, "ok", "readable again: back to normal");
  });

  it("EACCES for a root agent without CAP_DAC_OVERRIDE (setpriv): one-shot renew reports permission denied and does not re-join", async function () {
    requireTool(this, "setpriv");
    const l = nodeLayout(a.root);
    const file = path.join(l.pkiDir, readlinkSync(l.current("client")));
    const config = path.join(tempDir(), "agent.yaml");
    writeFileSync(config, YAML.stringify({ root: a.root, server: server.url, caCertHash: server.pin, tokenFile: path.join(a.root, "token"), nodeName: "unread-1", addresses: { only: ["127.0.0.1"] }, hooks: [], controlSocket: path.join(tempDir(), "none.sock") }));
    chmodSync(file, 0o000);
    try {
      // Root without the capabilities that bypass file modes: what a hardened unit, or an
      // unprivileged agent, meets when the file is not readable to it.
      const r = await run("setpriv", ["--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-dac_override,-dac_read_search", BIN, "renew", "client", "--force", "--config", config]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /certificate cannot be read: cannot read .*EACCES: permission denied.*not re-joining/);
      assert.equal(await tokenUses(), 1, "the bootstrap token was not spent");
    } finally {
      chmodSync(file, 0o600);
    }
  });
});

