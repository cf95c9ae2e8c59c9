// A joined node asks for serving SANs it does not own, by join and by renewal, with CSRs made by
// the openssl CLI (not nodecert's code): every one is refused with its rule, its own are signed.
import { strict as assert } from "node:assert";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { nodecert, requireTool, run, startServer, tempDir, type TestServer } from "../support/helpers.js";
import { requestJson } from "../../src/platform/https-client.js";
import { PROTOCOL_VERSION } from "../../src/protocol/messages.js";
import { runAgent } from "../../src/agent/daemon.js";
import { AgentConfig } from "../../src/config/agent.js";
import { writeFileAtomic } from "../../src/platform/files.js";
import { quietLogger } from "../support/helpers.js";

/** An openssl-made key and CSR for `node`, with `sans` as openssl writes them ("DNS:x,IP:y"). */
async function opensslCsr(node: string, kind: "client" | "serving", sans?: string): Promise<{ csr: string; key: string }> {
  const d = tempDir();
  const keyFile = path.join(d, "key.pem");
  const args = ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", keyFile, "-subj", `/O=system:nodes/CN=system:node:${node}`];
  args.push("-addext", `extendedKeyUsage=${kind === "client" ? "clientAuth" : "serverAuth"}`, "-addext", "keyUsage=critical,digitalSignature");
  if (sans) args.push("-addext", `subjectAltName=${sans}`);
  const r = await run("openssl", args);
  assert.equal(r.code, 0, r.stderr);
  return { csr: r.stdout, key: readFileSync(keyFile, "utf8") };
}

/** What openssl reads as the certificate's SANs, e.g. "DNS:evil-1, IP Address:10.0.0.3". */
async function opensslSans(pem: string): Promise<string> {
  const f = path.join(tempDir(), "c.pem");
  writeFileSync(f, pem);
  const r = await run("openssl", ["x509", "-in", f, "-noout", "-ext", "subjectAltName"]);
  return r.stdout.split("\n")[1]?.trim() ?? "";
}

const facts = (node: string) => ({ hostname: node, agentVersion: "hostile", addresses: ["10.0.0.2", "10.0.0.10", "10.96.0.1", "127.0.0.1"], names: ["good-1", "localhost", "kubernetes.default.svc"] });

// What a hostile node asks for, the rule that refuses it. The node's facts claim all of them.
const HOSTILE: [string, string][] = [
  ["IP:10.0.0.2", "serving-san-other-node"], // good-1's address (its live certificate and approval)
  ["DNS:good-1", "serving-san-other-node"], // good-1's name
  ["IP:10.0.0.10", "serving-san-control-plane"], // the control plane's IP (apiServerUrl)
  ["DNS:cp.example.com", "serving-san-control-plane"], // the control plane's name (server.yaml sans)
  ["IP:127.0.0.1", "serving-san-loopback"], // also where this control plane listens
  ["DNS:localhost", "serving-san-loopback"],
  ["DNS:kubernetes.default.svc", "serving-san-kubernetes-service"],
  ["DNS:kubernetes", "serving-san-kubernetes-service"],
  ["IP:10.96.0.1", "serving-san-service-cidr"], // the kubernetes service IP
  ["IP:0.0.0.0", "serving-san-unspecified"],
  ["IP:224.0.0.1", "serving-san-multicast"],
  ["IP:255.255.255.255", "serving-san-broadcast"],
  ["DNS:192.168.7.7", "serving-san-ip-shaped-dns"], // an IPv4 literal in a DNS SAN, never retyped
  ["IP:10.9.9.9", "serving-sans-owned"], // granted by nothing
];

describe("e2e: a hostile node cannot get serving certificates for names and addresses it does not own", function () {
  this.timeout(120_000);
  let server: TestServer;
  let ca: string;
  const admin = (...args: string[]) => nodecert([...args, "--dir", server.dir, "--server", server.url]);

  before(async function () {
    requireTool(this, "openssl");
    // As on a real network: no loopback SANs. The control plane is also known as cp.example.com
    // and the API server as 10.0.0.10.
    server = await startServer({ overrides: { sans: ["localhost", "127.0.0.1", "cp.example.com"], apiServerUrl: "https://10.0.0.10:6443", policy: { allowLoopbackSans: false } } });
    ca = server.ca.bundlePem;
  });
  after(async () => server?.close());

  async function joinWith(token: string, node: string, servingSans: string) {
    const client = await opensslCsr(node, "client");
    const serving = await opensslCsr(node, "serving", servingSans);
    const r = await requestJson(`${server.url}/v1/join`, { body: { v: PROTOCOL_VERSION, nodeName: node, facts: facts(node), csrs: { client: client.csr, serving: serving.csr } }, headers: { authorization: `Bearer ${token}` }, tls: { ca } });
    return { ...r, clientKey: client.key };
  }

  it("join and renewal: each foreign SAN is refused with its rule; the node's own are signed", async () => {
    // good-1 joins with an operator-bound address; it now holds 10.0.0.2 and its name.
    const goodToken = await admin("token", "create", "--node", "good-1", "--san", "10.0.0.2");
    assert.equal(goodToken.code, 0, goodToken.stderr);
    const good = await joinWith(goodToken.stdout.trim(), "good-1", "DNS:good-1,IP:10.0.0.2");
    assert.equal(good.status, 200, JSON.stringify(good.body));

    const tokenOut = await admin("token", "create", "--node", "evil-1", "--san", "10.0.0.3", "--san", "evil-1.example.com");
    assert.equal(tokenOut.code, 0, tokenOut.stderr);
    const token = tokenOut.stdout.trim();
    for (const [san, rule] of HOSTILE) {
      const r = await joinWith(token, "evil-1", `DNS:evil-1,${san}`);
      assert.equal(r.status, 403, `join with ${san}: ${JSON.stringify(r.body)}`);
      assert.equal((r.body as { rule: string }).rule, rule, `join with ${san}: ${JSON.stringify(r.body)}`);
    }
    assert.equal(await server.store.getNode("evil-1"), undefined, "no denied join recorded the node");
    assert.equal((await server.store.getToken(token.split(".")[0]))?.usesLeft, 1, "no denied join spent the token");
    const audit = await server.store.listAudit(100);
    for (const [, rule] of HOSTILE) assert.ok(audit.some((e) => e.type === "join.denied" && e.node === "evil-1" && e.rule === rule), `audited: ${rule}`);

    // Its own: the node name and what the operator bound to its token.
    const own = await joinWith(token, "evil-1", "DNS:evil-1,DNS:evil-1.example.com,IP:10.0.0.3");
    assert.equal(own.status, 200, JSON.stringify(own.body));
    const issued = own.body as { certificates: { client: string; serving: string } };
    assert.equal(await opensslSans(issued.certificates.serving), "DNS:evil-1, DNS:evil-1.example.com, IP Address:10.0.0.3");

    // Renewal over mTLS with the certificate it just got: the same refusals.
    const tls = { ca, cert: issued.certificates.client, key: own.clientKey };
    const renew = async (sans: string) => {
      const serving = await opensslCsr("evil-1", "serving", sans);
      return requestJson(`${server.url}/v1/renew`, { body: { v: PROTOCOL_VERSION, facts: facts("evil-1"), csrs: { serving: serving.csr } }, tls });
    };
    for (const [san, rule] of HOSTILE) {
      const r = await renew(`DNS:evil-1,${san}`);
      assert.equal(r.status, 403, `renewal with ${san}: ${JSON.stringify(r.body)}`);
      assert.equal((r.body as { rule: string }).rule, rule, `renewal with ${san}: ${JSON.stringify(r.body)}`);
    }
    const again = await renew("DNS:evil-1,IP:10.0.0.3");
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(await opensslSans((again.body as { certificates: { serving: string } }).certificates.serving), "DNS:evil-1, IP Address:10.0.0.3");
    // The token's SANs became the node's approvals (shown with their source), its certificates' SANs are recorded.
    const sans = await admin("node", "sans", "evil-1");
    assert.equal(sans.code, 0, sans.stderr);
    assert.match(sans.stdout, /10\.0\.0\.3\s+ip\s+token:\w{6}/);
    assert.match(sans.stdout, /evil-1\s+dns\s+node-name/);
    assert.match(sans.stdout, /held by live serving certificates: evil-1, evil-1\.example\.com, 10\.0\.0\.3/);
  });

  it("approve-san grants a SAN to a joined node, revoke-san takes it back, and refused SANs cannot be approved", async () => {
    const t = await admin("token", "create", "--node", "appr-1");
    const j = await joinWith(t.stdout.trim(), "appr-1", "DNS:appr-1");
    assert.equal(j.status, 200, JSON.stringify(j.body));
    const tls = { ca, cert: (j.body as { certificates: { client: string } }).certificates.client, key: j.clientKey };
    const renew = async (sans: string) => requestJson(`${server.url}/v1/renew`, { body: { v: PROTOCOL_VERSION, facts: facts("appr-1"), csrs: { serving: (await opensslCsr("appr-1", "serving", sans)).csr } }, tls });
    assert.equal(((await renew("DNS:appr-1,IP:10.0.5.7")).body as { rule: string }).rule, "serving-sans-owned");

    const ok = await admin("node", "approve-san", "appr-1", "10.0.5.0/24", "appr-1.lan");
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal((await renew("DNS:appr-1,DNS:appr-1.lan,IP:10.0.5.7")).status, 200);

    // Each refused with its rule at approval time, not later at the node.
    for (const [san, rule] of [["10.0.0.2", "serving-san-other-node"], ["kubernetes.default", "serving-san-kubernetes-service"], ["10.96.0.10", "serving-san-service-cidr"], ["cp.example.com", "serving-san-control-plane"]]) {
      const r = await admin("node", "approve-san", "appr-1", san);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, new RegExp(`HTTP 403 denied \\(rule ${rule}\\)`), r.stderr);
    }
    const bad = await admin("token", "create", "--node", "new-1", "--san", "kubernetes.default.svc");
    assert.match(bad.stderr, /rule serving-san-kubernetes-service/);
    const unbound = await admin("token", "create", "--san", "10.0.6.1");
    assert.match(unbound.stderr, /sans and cidrs bind serving SANs to one node: give node as well/);
    const unknown = await admin("node", "approve-san", "nobody", "10.0.6.1");
    assert.match(unknown.stderr, /no node named "nobody"/);

    const rv = await admin("node", "revoke-san", "appr-1", "10.0.5.0/24");
    assert.equal(rv.code, 0, rv.stderr);
    assert.match(rv.stdout, /revoked 1 approval/);
    assert.equal(((await renew("DNS:appr-1,IP:10.0.5.7")).body as { rule: string }).rule, "serving-sans-owned");
    assert.equal((await renew("DNS:appr-1,DNS:appr-1.lan")).status, 200, "the other approval stays");
    assert.ok((await server.store.listAudit(50)).some((e) => e.type === "san.revoked" && e.node === "appr-1"));
  });

  it("a policy.nodeGroups entry grants addresses and {node} names to the nodes it matches", async () => {
    const s = await startServer({ overrides: { policy: { allowLoopbackSans: false, nodeGroups: [{ nodes: "rack1-.*", cidrs: ["10.20.0.0/16"], dnsNames: ["{node}.rack1.example.com"] }] } } });
    try {
      const join = async (node: string, sans: string) => {
        const client = await opensslCsr(node, "client");
        const serving = await opensslCsr(node, "serving", sans);
        return requestJson(`${s.url}/v1/join`, { body: { v: PROTOCOL_VERSION, nodeName: node, facts: facts(node), csrs: { client: client.csr, serving: serving.csr } }, headers: { authorization: `Bearer ${await s.createToken()}` }, tls: { ca: s.ca.bundlePem } });
      };
      assert.equal((await join("rack1-a", "DNS:rack1-a,DNS:rack1-a.rack1.example.com,IP:10.20.3.4")).status, 200);
      const other = await join("rack2-a", "DNS:rack2-a,IP:10.20.3.5");
      assert.equal((other.body as { rule: string }).rule, "serving-sans-owned");
      const taken = await join("rack1-b", "DNS:rack1-b,IP:10.20.3.4");
      assert.equal((taken.body as { rule: string }).rule, "serving-san-other-node", "rack1-a holds 10.20.3.4");
    } finally {
      await s.close();
    }
  });

  it("an agent whose SANs are refused says so in its log and in nodecert status (LAST ERROR), before it ever joined", async () => {
    const root = path.join(tempDir(), "node");
    const tokenFile = path.join(tempDir(), "token");
    await writeFileAtomic(tokenFile, (await server.createToken()) + "\n");
    // It asks for a name nobody approved (and its loopback join address is not allowed here).
    const config = AgentConfig.parse({ root, server: server.url, caCertHash: server.pin, tokenFile, nodeName: "lonely-1", addresses: { extra: ["lonely-1.example.com"] }, healthListen: "127.0.0.1:0", hooks: [] });
    const agent = await runAgent({ config, logger: quietLogger(), hostFacts: async () => ({}), scheduler: () => ({ stop() {}, execute: async () => undefined }), setTimer: () => ({ cancel() {} }) });
    try {
      await agent.tick();
      assert.match(agent.renewer.lastError ?? "", /rule serving-san-loopback\): IP SAN 127\.0\.0\.1 is a loopback address/);
      const st = await nodecert(["status", "--root", root]);
      assert.equal(st.code, 1);
      assert.match(st.stdout, /LAST ERROR: .*join refused by .*HTTP 403 denied \(rule serving-san-loopback\): IP SAN 127\.0\.0\.1 is a loopback address/);
    } finally {
      await agent.close();
    }
  });
  it("a renewal may add the address the node renews from (seen by the control plane, not claimed), and only that one", async () => {
    // Loopback stands in for a node's network here: 127.0.0.x addresses are allowed on this server.
    const s = await startServer({ overrides: { policy: { allowLoopbackSans: true } } });
    try {
      const join = async (node: string, sans: string) => {
        const client = await opensslCsr(node, "client");
        const serving = await opensslCsr(node, "serving", sans);
        const r = await requestJson(`${s.url}/v1/join`, { body: { v: PROTOCOL_VERSION, nodeName: node, facts: facts(node), csrs: { client: client.csr, serving: serving.csr } }, headers: { authorization: `Bearer ${await s.createToken()}` }, tls: { ca: s.ca.bundlePem } });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        return { ca: s.ca.bundlePem, cert: (r.body as { certificates: { client: string } }).certificates.client, key: client.key };
      };
      const renewFrom = async (node: string, tls: { ca: string; cert: string; key: string }, localAddress: string, sans: string) =>
        requestJson(`${s.url}/v1/renew`, { localAddress, body: { v: PROTOCOL_VERSION, facts: facts(node), csrs: { serving: (await opensslCsr(node, "serving", sans)).csr } }, tls });
      const moved = await join("moved-1", "DNS:moved-1,IP:127.0.0.1");
      // Its address changed (DHCP): it renews from 127.0.0.5 and asks for it.
      const r = await renewFrom("moved-1", moved, "127.0.0.5", "DNS:moved-1,IP:127.0.0.5");
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(await opensslSans((r.body as { certificates: { serving: string } }).certificates.serving), "DNS:moved-1, IP Address:127.0.0.5");
      // An address it does not renew from is still its own claim only.
      const claim = await renewFrom("moved-1", moved, "127.0.0.5", "DNS:moved-1,IP:127.0.0.6");
      assert.equal((claim.body as { rule: string }).rule, "serving-sans-owned", JSON.stringify(claim.body));
      // That another node can never take it this way is proven in test/server/policy.test.ts: here,
      // with loopback allowed, 127.0.0.x names this host for every node, so no node holds it.
    } finally {
      await s.close();
    }
  });
});
