import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import { statSync, writeFileSync, readFileSync } from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { runAgent } from "../../src/agent/daemon.js";
import { AgentConfig } from "../../src/config/agent.js";
import { nodeLayout } from "../../src/agent/layout.js";
import { certificateInfo } from "../../src/pki/certificate-info.js";
import { cronScheduler, validateSchedule } from "../../src/agent/scheduler.js";
import { writeFileAtomic } from "../../src/platform/files.js";
import { BIN, captureLogger, freePort, nodecert, startServer, tempDir, type TestServer } from "../support/helpers.js";
import { cliInProcess } from "../support/cli.js";

let nodes = 0;
/** A freshly joined node with a name of its own (one server is shared by these tests). */
async function joinedRoot(server: TestServer): Promise<{ root: string; configFile: string }> {
  const root = path.join(tempDir(), "node");
  const name = `n${++nodes}`;
  const r = await nodecert(["join", "--server", server.url, "--token", await server.createToken(), "--ca-cert-hash", server.pin, "--root", root, "--node-name", name, "--address", "127.0.0.1"]);
  assert.equal(r.code, 0, r.stderr);
  const configFile = path.join(tempDir(), "agent.yaml");
  writeFileSync(configFile, YAML.stringify({ root, server: server.url, caCertHash: server.pin, nodeName: name, addresses: { only: ["127.0.0.1"] }, healthListen: "127.0.0.1:0", hooks: [] }));
  return { root, configFile };
}

const serial = (root: string, kind: "client" | "serving") => certificateInfo(readFileSync(nodeLayout(root).current(kind), "utf8")).serial;

describe("cli: renew, needs-renewal, SIGHUP, schedule", function () {
  let server: TestServer;
  before(async () => (server = await startServer()));
  after(async () => server?.close());

  it("renew asks the running agent over its 0600 unix socket and waits for the result", async () => {
    const { root, configFile } = await joinedRoot(server);
    const config = AgentConfig.parse(YAML.parse(readFileSync(configFile, "utf8")));
    const agent = await runAgent({ config, logger: captureLogger().logger, scheduler: () => ({ stop() {}, execute: async () => undefined }) });
    try {
      const sock = path.join(nodeLayout(root).stateDir, "control.sock");
      assert.equal(statSync(sock).mode & 0o777, 0o600);
      const before = serial(root, "serving");
      const notDue = await cliInProcess(["renew", "serving", "--config", configFile]);
      assert.equal(notDue.code, 0, notDue.stderr);
      assert.match(notDue.stdout, /not renewed serving: valid until/);
      assert.doesNotMatch(notDue.stderr, /one-shot/);
      const forced = await cliInProcess(["renew", "serving", "--force", "--config", configFile]);
      assert.equal(forced.code, 0, forced.stderr);
      assert.match(forced.stdout, new RegExp(`renewed serving: serial ${serial(root, "serving")}`));
      assert.notEqual(serial(root, "serving"), before);
      assert.equal(agent.renewer.lastDecisions.find((x) => x.kind === "serving")?.serial, serial(root, "serving"), "the agent did the work");
    } finally {
      await agent.close();
    }
  });

  it("renew runs one-shot when no agent is running", async () => {
    const { root, configFile } = await joinedRoot(server);
    const before = serial(root, "client");
    const r = await cliInProcess(["renew", "all", "--force", "--config", configFile]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /no agent is running; renewing one-shot/);
    assert.match(r.stdout, /renewed client: serial [0-9a-f]+/);
    assert.match(r.stdout, /renewed serving: serial [0-9a-f]+/);
    assert.notEqual(serial(root, "client"), before);
    const bad = await cliInProcess(["renew", "kubelet", "--config", configFile]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /unknown certificate "kubelet": use client, serving or all/);
  });

  it("needs-renewal exits 1 when nothing is due, 0 when a renewal is due, 2 when a certificate is missing", async () => {
    const { root, configFile } = await joinedRoot(server);
    const notDue = await cliInProcess(["needs-renewal", "--config", configFile]);
    assert.equal(notDue.code, 1, notDue.stdout + notDue.stderr);
    assert.match(notDue.stdout, /client: ok: valid until/);
    const due = path.join(tempDir(), "due.yaml");
    writeFileSync(due, YAML.stringify({ ...YAML.parse(readFileSync(configFile, "utf8")), renewBefore: "400d" }));
    const r = await cliInProcess(["needs-renewal", "--config", due]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /client: renew: renewal deadline .* reached/);
    const missing = path.join(tempDir(), "missing.yaml");
    writeFileSync(missing, YAML.stringify({ root: path.join(tempDir(), "empty"), hooks: [] }));
    const m = await cliInProcess(["needs-renewal", "--config", missing]);
    assert.equal(m.code, 2);
    assert.match(m.stdout, /client: urgent: certificate is missing/);
    assert.ok(root);
  });

  it("a real agent process reloads its configuration on SIGHUP and exits cleanly on SIGTERM", async () => {
    const { configFile } = await joinedRoot(server);
    const port = await freePort();
    const cfg = { ...YAML.parse(readFileSync(configFile, "utf8")), healthListen: `127.0.0.1:${port}` };
    writeFileSync(configFile, YAML.stringify(cfg));
    const child = spawn(BIN, ["agent", "--config", configFile], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const waitFor = (re: RegExp) =>
      new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`timed out waiting for ${re}:\n${out}`)), 20_000);
        const check = () => re.test(out) && (clearTimeout(t), resolve());
        child.stdout.on("data", check);
        check();
      });
    await waitFor(/"message":"agent started".*"schedule":"\* \* \* \* \*"/);
    await waitFor(/"message":"health endpoint"/);
    writeFileSync(configFile, YAML.stringify({ ...cfg, schedule: "*/5 * * * *" }));
    child.kill("SIGHUP");
    await waitFor(/"message":"configuration reloaded".*"rescheduled":true,"schedule":"\*\/5 \* \* \* \*"/);
    // A listener address cannot move on reload: the agent says so instead of pretending.
    writeFileSync(configFile, YAML.stringify({ ...cfg, schedule: "*/5 * * * *", healthListen: "127.0.0.1:1" }));
    child.kill("SIGHUP");
    await waitFor(/"message":"some changed settings take effect only after a restart of the agent","settings":\["healthListen"\]/);
    writeFileSync(configFile, YAML.stringify({ ...cfg, schedule: "not a schedule" }));
    child.kill("SIGHUP");
    await waitFor(/"error":"invalid schedule \\"not a schedule\\".*"message":"configuration reload failed; keeping the previous configuration"/);
    const exited = new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
    child.kill("SIGTERM");
    assert.equal(await exited, 0);
    assert.match(out, /"message":"shutting down","signal":"SIGTERM"/);
  });

  it("the schedule is a real node-cron task: invalid expressions are refused, execute() runs the check", async () => {
    assert.throws(() => validateSchedule("every minute"), /invalid schedule "every minute": use cron syntax/);
    const { logger } = captureLogger();
    let runs = 0;
    const job = cronScheduler(logger)("0 0 1 1 *", async () => {
      runs++;
    });
    try {
      await job.execute();
      await job.execute();
      assert.equal(runs, 2);
    } finally {
      job.stop();
    }
  });

  it("status shows NEXT RENEWAL from the persisted deadline", async () => {
    const { root, configFile } = await joinedRoot(server);
    await nodecert(["needs-renewal", "--config", configFile]); // read-only: must not persist
    const config = AgentConfig.parse(YAML.parse(readFileSync(configFile, "utf8")));
    const agent = await runAgent({ config, logger: captureLogger().logger, scheduler: () => ({ stop() {}, execute: async () => undefined }) });
    await agent.tick();
    await agent.tick();
    await agent.close();
    const s = await nodecert(["status", "--root", root]);
    assert.match(s.stdout, /NEXT RENEWAL/);
    const renewAt = agent.renewer.lastDecisions[0].renewAt!.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
    assert.ok(s.stdout.includes(renewAt), `${renewAt} in\n${s.stdout}`);
    await writeFileAtomic(configFile, readFileSync(configFile));
  });
});
