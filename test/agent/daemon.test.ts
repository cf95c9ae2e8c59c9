import { strict as assert } from "node:assert";
import path from "node:path";
import http from "node:http";
import { runAgent } from "../../src/agent/daemon.js";
import { AgentConfig } from "../../src/config/agent.js";
import { writeFileAtomic } from "../../src/platform/files.js";
import { captureLogger, freePort, startServer, tempDir } from "../support/helpers.js";
import { initServer } from "../../src/server/init.js";
import { random } from "../support/helpers.js";

const getJson = (url: string) =>
  new Promise<{ status: number; body: { ok: boolean; joined: boolean } }>((resolve, reject) => {
    http.get(url, (res) => {
      let d = "";
      res.on("data", (c) => (d += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(d) }));
    }).on("error", reject);
  });

describe("agent daemon: joins from a token file, retries while the control plane is down, serves /healthz", () => {
  it("keeps retrying with backoff while the server is down, then joins when it comes up", async () => {
    const dir = path.join(tempDir(), "server");
    const port = await freePort();
    const init = await initServer({ dir, listen: `127.0.0.1:${port}`, sans: ["127.0.0.1"], now: new Date(), random });
    const tokenFile = path.join(tempDir(), "token");
    const root = path.join(tempDir(), "node");
    const config = AgentConfig.parse({ root, server: `https://127.0.0.1:${port}`, caCertHash: init.pin, tokenFile, nodeName: "n1", addresses: { only: ["127.0.0.1"] }, healthListen: "127.0.0.1:0", hooks: [] });
    const timers: { fn: () => void; ms: number }[] = [];
    const { logger, lines } = captureLogger("agent");
    await writeFileAtomic(tokenFile, "placeholder.token\n");
    const agent = await runAgent({ config, logger, hostFacts: async () => ({}), setTimer: (fn, ms) => (timers.push({ fn, ms }), { cancel() {} }) });
    try {
      const health = `http://127.0.0.1:${agent.healthPort}/healthz`;
      // Let the first attempt fail against the closed port.
      while (timers.length < 1) await new Promise((r) => setImmediate(r));
      assert.deepEqual((await getJson(health)).body, { ok: true, joined: false });
      assert.ok(lines.some((l) => /renewal failed; the current certificates stay installed/.test(l) && /cannot reach https:\/\/127.0.0.1/.test(l)));
      assert.ok(timers[0].ms >= 0 && timers[0].ms <= 2000, "first retry within the 2 s base");
      // Bring the server up with the same port and give the agent a real token.
      const server = await startServer({ dir });
      try {
        assert.equal(server.port, port);
        await writeFileAtomic(tokenFile, (await server.createToken()) + "\n");
        timers.shift()!.fn();
        const state = await agent.joined;
        assert.equal(state.nodeName, "n1");
        assert.deepEqual((await getJson(health)).body, { ok: true, joined: true });
      } finally {
        await server.close();
      }
    } finally {
      await agent.close();
    }
  });
});
