import { strict as assert } from "node:assert";
import { AgentError, codeForErrno, errorCode } from "../../src/agent/errors.js";

describe("agent/errors: outcome codes from errno", () => {
  it("maps the errnos that need different fixes to different codes", () => {
    assert.equal(codeForErrno("ENOENT"), "missing");
    assert.equal(codeForErrno("EACCES"), "permission-denied");
    assert.equal(codeForErrno("EPERM"), "permission-denied");
    assert.equal(codeForErrno("EROFS"), "read-only");
    assert.equal(codeForErrno("ENOSPC"), "disk-full");
    assert.equal(codeForErrno("EIO"), "unreadable");
    assert.equal(codeForErrno(undefined), "unreadable");
  });
  it("an AgentError carries its code beside the message people read", () => {
    const e = new AgentError("locked", "held by pid 1");
    assert.equal(errorCode(e), "locked");
    assert.equal(e.message, "held by pid 1");
    assert.equal(errorCode(new Error("plain")), undefined);
  });
});
