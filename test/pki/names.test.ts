import { strict as assert } from "node:assert";
import { normalizeIp, splitSans } from "../../src/pki/names.js";

describe("pki/names", () => {
  it("normalises IPv6 to RFC 5952 and an IPv4-mapped IPv6 address (a dual-stack socket's IPv4 peer) to IPv4", () => {
    assert.equal(normalizeIp("fd00:0:0:0:0:0:0:7"), "fd00::7");
    assert.equal(normalizeIp("::ffff:10.0.0.1"), "10.0.0.1");
    assert.equal(normalizeIp("0:0:0:0:0:ffff:a00:1"), "10.0.0.1");
    assert.equal(normalizeIp("::ffff:127.0.0.1"), "127.0.0.1");
    assert.equal(normalizeIp("::1"), "::1");
    assert.equal(normalizeIp("10.0.0.1"), "10.0.0.1");
    assert.deepEqual(splitSans(["n1", "::ffff:10.96.0.1"]), { dns: ["n1"], ip: ["10.96.0.1"] }, "so the service-CIDR check sees the IPv4 address");
  });
});
