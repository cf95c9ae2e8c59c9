import { strict as assert } from "node:assert";
import os from "node:os";
import { nodeAddresses, nodeIdentity } from "../../src/agent/identity.js";
import { ConnectionAddress, localAddressToward } from "../../src/platform/local-address.js";

const ifaces = {
  lo: [
    { address: "127.0.0.1", family: "IPv4", internal: true, netmask: "255.0.0.0", mac: "00:00:00:00:00:00", cidr: "127.0.0.1/8" },
    { address: "::1", family: "IPv6", internal: true, netmask: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", mac: "00:00:00:00:00:00", cidr: "::1/128", scopeid: 0 },
  ],
  eth0: [
    { address: "10.0.0.7", family: "IPv4", internal: false, netmask: "255.255.255.0", mac: "aa:bb:cc:dd:ee:ff", cidr: "10.0.0.7/24" },
    { address: "10.0.0.8", family: "IPv4", internal: false, netmask: "255.255.255.0", mac: "aa:bb:cc:dd:ee:ff", cidr: "10.0.0.8/24" },
    { address: "fe80::1", family: "IPv6", internal: false, netmask: "ffff:ffff:ffff:ffff::", mac: "aa:bb:cc:dd:ee:ff", cidr: "fe80::1/64", scopeid: 2 },
    { address: "fd00:0:0:0::7", family: "IPv6", internal: false, netmask: "ffff:ffff:ffff:ffff::", mac: "aa:bb:cc:dd:ee:ff", cidr: "fd00::7/64", scopeid: 0 },
    { address: "169.254.3.4", family: "IPv4", internal: false, netmask: "255.255.0.0", mac: "aa:bb:cc:dd:ee:ff", cidr: "169.254.3.4/16" },
  ],
} as unknown as ReturnType<typeof os.networkInterfaces>;

describe("agent/identity", () => {
  it("keeps every address of every interface, skipping loopback and link-local by default", () => {
    assert.deepEqual(nodeAddresses({ includeLoopback: false, includeLinkLocal: false, extra: [] }, ifaces), ["10.0.0.7", "10.0.0.8", "fd00::7"]);
    assert.deepEqual(nodeAddresses({ includeLoopback: true, includeLinkLocal: true, extra: [] }, ifaces).sort(), ["10.0.0.7", "10.0.0.8", "127.0.0.1", "169.254.3.4", "::1", "fd00::7"]);
    assert.deepEqual(nodeAddresses({ includeLoopback: false, includeLinkLocal: false, extra: [], only: ["10.1.1.1"] }, ifaces), ["10.1.1.1"]);
  });

  it("by default asks for the node name and the local address of its connection to the control plane, plus the extras", async () => {
    const id = await nodeIdentity({
      hostname: "Worker-7",
      addresses: { includeLoopback: false, includeLinkLocal: false, extra: ["worker-7.lan", "192.0.2.1"] },
      interfaces: ifaces,
      connectionAddress: async () => "::ffff:10.0.0.8",
      facts: async () => ({ fqdn: "worker-7.example.com", machineId: "m" }),
    });
    assert.equal(id.nodeName, "worker-7");
    // Host name and FQDN are reported as facts, but not asked for: nothing but an approval grants them.
    assert.deepEqual(id.servingSans, ["worker-7", "worker-7.lan", "10.0.0.8", "192.0.2.1"]);
    assert.deepEqual(id.facts.addresses, ["10.0.0.8", "192.0.2.1"]);
    assert.deepEqual(id.facts.names, ["worker-7", "worker-7.example.com", "worker-7.lan"]);
    assert.equal(id.facts.fqdn, "worker-7.example.com");
    // No answer about the connection (no route yet): just the name and the extras.
    const offline = await nodeIdentity({ hostname: "worker-7", addresses: { includeLoopback: false, includeLinkLocal: false, extra: [] }, interfaces: ifaces, connectionAddress: async () => undefined, facts: async () => ({}) });
    assert.deepEqual(offline.servingSans, ["worker-7"]);
  });

  it("addresses.only overrides the connection's address; source: interfaces keeps the old every-interface behaviour", async () => {
    const base = { includeLoopback: false, includeLinkLocal: false, extra: [] };
    const only = await nodeIdentity({ hostname: "w", addresses: { ...base, only: ["10.1.1.1"] }, interfaces: ifaces, connectionAddress: async () => "10.0.0.8", facts: async () => ({}) });
    assert.deepEqual(only.servingSans, ["w", "10.1.1.1"]);
    const all = await nodeIdentity({ hostname: "Worker-7", addresses: { ...base, source: "interfaces", extra: ["worker-7.lan", "192.0.2.1"] }, interfaces: ifaces, connectionAddress: async () => "10.9.9.9", facts: async () => ({ fqdn: "worker-7.example.com" }) });
    assert.deepEqual(all.servingSans, ["worker-7", "worker-7.example.com", "worker-7.lan", "10.0.0.7", "10.0.0.8", "fd00::7", "192.0.2.1"]);
  });

  it("finds the local address toward a URL without sending anything, and keeps the last answer when the probe fails", async () => {
    assert.equal(await localAddressToward("https://127.0.0.1:9443"), "127.0.0.1");
    let fail = false;
    const c = new ConnectionAddress(async (url) => {
      if (fail) throw new Error("no route");
      return localAddressToward(url);
    });
    assert.equal(await c.toward("https://127.0.0.1:1"), "127.0.0.1");
    fail = true;
    assert.equal(await c.toward("https://127.0.0.1:1"), "127.0.0.1", "the last answer, not none");
    assert.equal(await c.toward("https://127.0.0.2:1"), undefined, "nothing known for another URL");
    assert.equal(await c.toward(undefined), undefined);
  });
});
