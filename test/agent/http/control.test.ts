// The client side of the agent's control socket: whatever answers on the socket, `nodecert renew`
// gets a result or an error that says what went wrong, never an uncaught exception.
import { strict as assert } from "node:assert";
import http from "node:http";
import path from "node:path";
import { requestRenewal } from "../../../src/agent/http/control.js";
import { tempDir } from "../../support/helpers.js";

async function listen(handler: http.RequestListener): Promise<{ socket: string; close(): Promise<void> }> {
  const socket = path.join(tempDir(), "control.sock");
  const srv = http.createServer(handler);
  await new Promise<void>((r) => srv.listen(socket, r));
  return { socket, close: () => new Promise((r) => srv.close(() => r())) };
}

describe("agent/control: requestRenewal", () => {
  it("an answer that is not JSON is an error naming the socket, not a crash", async () => {
    const s = await listen((_req, res) => res.end("<html>something else listens here</html>"));
    try {
      await assert.rejects(requestRenewal(s.socket, ["client"], false), (e: Error) => /the agent on .*control\.sock sent an answer that is not JSON .*another program listening there/.test(e.message));
    } finally {
      await s.close();
    }
  });

  it("an answer cut off mid-JSON is an error too", async () => {
    const s = await listen((_req, res) => res.end('{"renewed": ['));
    try {
      await assert.rejects(requestRenewal(s.socket, ["client"], false), /not JSON/);
    } finally {
      await s.close();
    }
  });

  it("a JSON answer is the outcome; a refusal carries the status; no socket means no agent", async () => {
    const ok = await listen((_req, res) => res.end(JSON.stringify({ renewed: [], skipped: [{ kind: "client", reason: "not due" }] })));
    try {
      assert.deepEqual(await requestRenewal(ok.socket, ["client"], false), { renewed: [], skipped: [{ kind: "client", reason: "not due" }] });
    } finally {
      await ok.close();
    }
    const bad = await listen((_req, res) => ((res.statusCode = 400), res.end('{"error":"kinds"}')));
    try {
      await assert.rejects(requestRenewal(bad.socket, ["client"], false), /answered 400: \{"error":"kinds"\}/);
    } finally {
      await bad.close();
    }
    assert.equal(await requestRenewal(path.join(tempDir(), "absent.sock"), ["client"], false), undefined);
  });
});
