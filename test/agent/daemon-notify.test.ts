// The agent tells systemd it is ready only once its client certificate is valid.
import { strict as assert } from "node:assert";
import path from "node:path";
import { runAgent } from "../../src/agent/daemon.js";
import type { NotifyResult, NotifyState } from "../../src/platform/sd-notify.js";
import { AgentConfig } from "../../src/config/agent.js";
import { writeFileAtomic } from "../../src/platform/files.js";
import { captureLogger, startServer, tempDir } from "../support/helpers.js";

describe("agent daemon: systemd readiness", () => {
  it("sends READY=1 once, after the join, and STATUS= with the reason before and after", async () => {
    const server = await startServer();
    const tokenFile = path.join(tempDir(), "token");
    const root = path.join(tempDir(), "node");
    const config = AgentConfig.parse({ root, server: server.url, caCertHash: server.pin, tokenFile, nodeName: "n1", addresses: { only: ["127.0.0.1"] }, healthListen: "127.0.0.1:0", hooks: [] });
    const sent: NotifyState[] = [];
    const notify = async (s: NotifyState): Promise<NotifyResult> => (sent.push(s), { outcome: "sent" });
    const timers: (() => void)[] = [];
    await writeFileAtomic(tokenFile, "placeholder.token\n");
    const agent = await runAgent({ config, logger: captureLogger("agent").logger, hostFacts: async () => ({}), notify, setTimer: (fn) => (timers.push(fn), { cancel() {} }) });
    try {
      while (!sent.length) await new Promise((r) => setTimeout(r, 10));
      assert.equal(sent[0].ready, undefined, "not ready without certificates");
      assert.match(sent[0].status!, /^not ready: (client certificate: )?certificate is missing/);
      await writeFileAtomic(tokenFile, (await server.createToken()) + "\n");
      timers.shift()!();
      await agent.joined;
      while (!sent.some((s) => s.ready)) await new Promise((r) => setTimeout(r, 10));
      const ready = sent.filter((s) => s.ready);
      assert.equal(ready.length, 1);
      assert.match(ready[0].status!, /^ready: valid until /);
      await agent.tick();
      assert.equal(sent.filter((s) => s.ready).length, 1, "READY=1 is sent once");
    } finally {
      await agent.close();
      await server.close();
    }
    assert.deepEqual(sent.at(-1), { stopping: true, status: "stopping" });
  });
});
