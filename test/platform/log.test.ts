import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import path from "node:path";
import { captureLogger, startServer, tempDir } from "../support/helpers.js";
import { createLogger, redactString } from "../../src/platform/log.js";
import { Writable } from "node:stream";
import { runAgent } from "../../src/agent/daemon.js";
import { AgentConfig } from "../../src/config/agent.js";
import { exportPrivateKeyPem, generateKeyPair } from "../../src/pki/keys.js";
import { writeFileAtomic } from "../../src/platform/files.js";

describe("logging: JSON lines with secrets redacted", () => {
  it("redacts tokens, bearer headers, PEM private keys and secret-named fields anywhere in a line", async () => {
    const { logger, lines } = captureLogger();
    const token = "abcdef.0123456789abcdef";
    const key = await exportPrivateKeyPem((await generateKeyPair("ECDSA-P256")).privateKey);
    logger.info(`joining with ${token}`, { header: `Bearer ${token}`, nested: { deeper: [key] }, token: "whatever", privateKey: "x", keyAlgorithm: "ECDSA-P256" });
    logger.error("failed", { error: new Error(`bad token ${token}`) });
    const all = lines.join("\n");
    assert.ok(!all.includes(token) && !all.includes("0123456789abcdef"));
    assert.ok(!all.includes("BEGIN PRIVATE KEY") && !all.includes(key.split("\n")[1]));
    const first = JSON.parse(lines[0]);
    assert.equal(first.level, "info");
    assert.equal(first.token, "[REDACTED]");
    assert.equal(first.keyAlgorithm, "ECDSA-P256", "non-secret fields survive");
    assert.match(first.message, /joining with \[REDACTED\]/);
    assert.equal(redactString("no secrets here"), "no secrets here");
  });

  it("no raw control character reaches a log line: C0 as JSON escapes, DEL and C1 (0x9b is a CSI) too", () => {
    const { logger, lines } = captureLogger();
    const hostile = "v1\x1b[2J\x9b31m\x7f\x85";
    logger.warn("agent said", { agentVersion: hostile, [hostile]: "key too" });
    assert.equal(lines.length, 1);
    assert.doesNotMatch(lines[0], /[\u0000-\u001f\u007f-\u009f]/, "no raw control character in the line");
    const parsed = JSON.parse(lines[0]);
    assert.equal(parsed.agentVersion, hostile, "the value is intact for a JSON reader");
    assert.equal(parsed[hostile], "key too");
  });

  it("a full join through the agent daemon writes no token or private key into any server or agent log line", async () => {
    const server = await startServer();
    try {
      const token = await server.createToken();
      const root = path.join(tempDir(), "node");
      const tokenFile = path.join(tempDir(), "token");
      await writeFileAtomic(tokenFile, token + "\n");
      const agentLog = captureLogger("agent");
      const config = AgentConfig.parse({ root, server: server.url, caCertHash: server.pin, tokenFile, nodeName: "n1", addresses: { only: ["127.0.0.1"] }, healthListen: "127.0.0.1:0", hooks: [] });
      const agent = await runAgent({ config, logger: agentLog.logger, hostFacts: async () => ({}) });
      await agent.joined;
      await agent.close();
      const keys = ["client", "serving"].map((k) => readFileSync(path.join(root, `var/lib/kubelet/pki/kubelet-${k === "client" ? "client" : "server"}-current.pem`), "utf8"));
      const keyLines = keys.map((k) => k.split("-----BEGIN PRIVATE KEY-----")[1].split("\n")[1]);
      const all = [...server.logLines, ...agentLog.lines].join("\n");
      assert.ok(server.logLines.some((l) => l.includes("node joined")), "server logged the join");
      assert.ok(agentLog.lines.some((l) => l.includes('"joined"')), "agent logged the join");
      assert.ok(!all.includes(token.split(".")[1]), "no token secret");
      for (const k of keyLines) assert.ok(!all.includes(k), "no private key material");
      assert.ok(!all.includes("PRIVATE KEY"));
    } finally {
      await server.close();
    }
  });
  it("winston writes one JSON object per line, keys sorted, below-threshold levels dropped, child fields added", () => {
    const lines: string[] = [];
    const stream = new Writable({ write: (c, _e, cb) => (lines.push(...c.toString().split("\n").filter(Boolean)), cb()) });
    const logger = createLogger({ stream, component: "agent", level: "info" });
    logger.debug("not written");
    logger.info("started", { root: "/r", zeta: 1, alpha: { b: 2, a: 1 } });
    logger.child({ node: "n1" }).warn("slow", { ms: 5 });
    logger.log("error", "failed", { count: 10 });
    assert.equal(lines.length, 3);
    const first = JSON.parse(lines[0]);
    assert.deepEqual(Object.keys(first), ["alpha", "component", "level", "message", "root", "timestamp", "zeta"]);
    assert.deepEqual(Object.keys(first.alpha), ["a", "b"]);
    assert.ok(!Number.isNaN(Date.parse(first.timestamp)));
    assert.deepEqual({ ...JSON.parse(lines[1]), timestamp: 0 }, { component: "agent", level: "warn", message: "slow", ms: 5, node: "n1", timestamp: 0 });
    assert.equal(JSON.parse(lines[2]).level, "error");
  });
});
