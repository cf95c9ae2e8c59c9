import { strict as assert } from "node:assert";
import { createNodeCsr, parseCsr, type ParsedCsr } from "../../src/pki/csr.js";
import { generateKeyPair, type KeyAlgorithm } from "../../src/pki/keys.js";
import { DEFAULT_POLICY, evaluate, RULES, type PolicyConfig, type RequestContext } from "../../src/server/policy.js";
import { subtle, x509 } from "../../src/crypto/provider.js";
import { run, requireTool } from "../support/helpers.js";
import { allowedSans, controlPlaneSans, sanKey, type SanContext, type SanHolder } from "../../src/server/san-policy.js";
import type { SanGrant } from "../../src/server/store/store.js";
import { opensslCsr, pem, withPointOffCurve, withRsaExponentOne } from "../support/hostile-csr.js";

const facts = { hostname: "worker-1", fqdn: "worker-1.example.internal", addresses: ["10.0.0.7", "fd00::7"], agentVersion: "test" };

async function csrs(o: { node?: string; alg?: KeyAlgorithm; sans?: string[] } = {}): Promise<{ client: ParsedCsr; serving: ParsedCsr }> {
  const keys = await generateKeyPair(o.alg ?? "ECDSA-P256");
  const node = o.node ?? "worker-1";
  return {
    client: await parseCsr(await createNodeCsr({ kind: "client", nodeName: node, keys })),
    serving: await parseCsr(await createNodeCsr({ kind: "serving", nodeName: node, keys, sans: o.sans ?? ["worker-1", "worker-1.example.internal", "10.0.0.7", "fd00::7"] })),
  };
}

/** A CSR with an arbitrary subject/extensions, for shapes the agent never builds. */
async function rawCsr(name: x509.JsonName, extensions: x509.Extension[] = [], alg: "ECDSA" | "RSA-1024" = "ECDSA"): Promise<ParsedCsr> {
  const params = alg === "ECDSA" ? { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } : { name: "RSASSA-PKCS1-v1_5", modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" };
  const keys = (await subtle.generateKey(params as EcKeyGenParams, true, ["sign", "verify"])) as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name, keys, signingAlgorithm: params, extensions });
  return parseCsr(csr.toString("pem"));
}

const nodeName: x509.JsonName = [{ O: ["system:nodes"] }, { CN: ["system:node:worker-1"] }];

const grant = (kind: SanGrant["kind"], value: string, source = "operator"): SanGrant => ({ kind, value, source, createdAt: new Date(0) });

/** What the control plane knows about worker-1: it joined from 10.0.0.7; an operator approved the rest. */
function sanCtx(o: { grants?: SanGrant[]; held?: [string, SanHolder][]; joinAddress?: string; connectionAddress?: string; nodeGroups?: PolicyConfig["nodeGroups"]; node?: string } = {}): SanContext {
  const grants = o.grants ?? [grant("dns", "worker-1.example.internal"), grant("ip", "fd00::7")];
  return { allowed: allowedSans(o.node ?? "worker-1", { joinAddress: o.joinAddress ?? "10.0.0.7", connectionAddress: o.connectionAddress, grants, nodeGroups: o.nodeGroups ?? [] }), heldByOthers: new Map(o.held ?? []) };
}

async function ctx(over: Partial<RequestContext> = {}): Promise<RequestContext> {
  return { nodeName: "worker-1", facts, ...(await csrs()), sans: sanCtx(), ...over };
}

function denied(d: ReturnType<typeof evaluate>, rule: string, reason: RegExp): void {
  assert.equal(d.allowed, false, "expected a denial");
  if (d.allowed) return;
  assert.equal(d.rule, rule, `denied by ${d.rule}: ${d.reason}`);
  assert.match(d.reason, reason);
}

describe("server/policy: named approval rules", () => {
  it("allows a well-formed join and names every rule it ran", async () => {
    assert.deepEqual(evaluate(await ctx(), DEFAULT_POLICY), { allowed: true });
    assert.deepEqual(
      RULES.map((r) => r.name),
      [
        "node-name",
        "token-binding",
        "fips-node",
        "fips-algorithms",
        "csr-signature",
        "subject",
        "client-no-sans",
        "usage",
        "serving-sans-present",
        "serving-san-ip-shaped-dns",
        "serving-san-unspecified",
        "serving-san-broadcast",
        "serving-san-multicast",
        "serving-san-loopback",
        "serving-san-link-local",
        "serving-san-control-plane",
        "serving-san-kubernetes-service",
        "serving-san-service-cidr",
        "serving-san-other-node",
        "serving-sans-owned",
        "serving-sans-allowed",
        "key-strength",
      ],
    );
  });

  it("node-name: denies a name that is not a DNS-1123 subdomain", async () => {
    const c = await ctx({ nodeName: "Worker_1" });
    denied(evaluate(c, DEFAULT_POLICY), "node-name", /not a DNS-1123 subdomain/);
  });

  it("token-binding: allows the bound node, denies another", async () => {
    assert.equal(evaluate(await ctx({ boundNode: "worker-1" }), DEFAULT_POLICY).allowed, true);
    denied(evaluate(await ctx({ boundNode: "worker-2" }), DEFAULT_POLICY), "token-binding", /bound to node "worker-2"/);
  });

  it("csr-signature: denies a CSR whose signature does not verify", async () => {
    const c = await ctx();
    denied(evaluate({ ...c, serving: { ...c.serving!, signatureValid: false } }, DEFAULT_POLICY), "csr-signature", /serving CSR's self-signature/);
  });

  it("subject: denies a CSR for another node, a wrong O, or extra subject fields", async () => {
    denied(evaluate(await ctx({ ...(await csrs({ node: "worker-2" })) }), DEFAULT_POLICY), "subject", /CN is \[system:node:worker-2\]/);
    const c = await ctx();
    denied(evaluate({ ...c, client: await rawCsr([{ O: ["system:masters"] }, { CN: ["system:node:worker-1"] }]) }, DEFAULT_POLICY), "subject", /O is \[system:masters\]/);
    denied(evaluate({ ...c, client: await rawCsr([...nodeName, { OU: ["x"] }]) }, DEFAULT_POLICY), "subject", /fields \[OU\]/);
  });

  it("client-no-sans: denies a client CSR carrying SANs", async () => {
    const c = await ctx();
    const client = await rawCsr(nodeName, [new x509.SubjectAlternativeNameExtension([{ type: "dns", value: "worker-1" }])]);
    denied(evaluate({ ...c, client }, DEFAULT_POLICY), "client-no-sans", /carries SANs/);
  });

  it("usage: denies a client CSR asking for serverAuth", async () => {
    const c = await ctx();
    const client = await rawCsr(nodeName, [new x509.ExtendedKeyUsageExtension(["1.3.6.1.5.5.7.3.1"])]);
    denied(evaluate({ ...c, client }, DEFAULT_POLICY), "usage", /only clientAuth/);
  });

  it("serving-sans-present: denies a serving CSR without SANs or with URI SANs", async () => {
    const c = await ctx();
    denied(evaluate({ ...c, serving: await rawCsr(nodeName) }, DEFAULT_POLICY), "serving-sans-present", /no SANs/);
    const uri = await rawCsr(nodeName, [new x509.SubjectAlternativeNameExtension([{ type: "url", value: "spiffe://x/y" }])]);
    denied(evaluate({ ...c, serving: uri }, DEFAULT_POLICY), "serving-sans-present", /only DNS and IP/);
  });

  it("serving-sans-owned: the node's own facts grant nothing; only the control plane's sources do", async () => {
    // The node reports 10.0.0.99 and worker-1.lan as its own: still refused.
    const claims = { ...facts, addresses: [...facts.addresses, "10.0.0.99"], names: ["worker-1.lan"] };
    denied(evaluate(await ctx({ facts: claims, ...(await csrs({ sans: ["worker-1", "10.0.0.99"] })) }), DEFAULT_POLICY), "serving-sans-owned", /IP SAN 10.0.0.99 is not one this control plane allows node "worker-1" \(it allows worker-1 \(node-name\), worker-1.example.internal \(operator\), 10.0.0.7 \(join-address\), fd00::7 \(operator\)\): approve it with 'nodecert node approve-san worker-1 10.0.0.99'/);
    denied(evaluate(await ctx({ facts: claims, ...(await csrs({ sans: ["worker-1.lan"] })) }), DEFAULT_POLICY), "serving-sans-owned", /DNS SAN "worker-1.lan" is not one/);
    // Without the approvals, only the node name and the join address are left.
    denied(evaluate(await ctx({ sans: sanCtx({ grants: [] }) }), DEFAULT_POLICY), "serving-sans-owned", /DNS SAN "worker-1.example.internal"/);
    assert.equal(evaluate(await ctx({ sans: sanCtx({ grants: [] }), ...(await csrs({ sans: ["worker-1", "10.0.0.7"] })) }), DEFAULT_POLICY).allowed, true);
    // The address an authenticated renewal came from is the control plane's own observation...
    const moved = await csrs({ sans: ["worker-1", "10.0.0.9"] });
    denied(evaluate(await ctx({ sans: sanCtx({ grants: [] }), ...moved }), DEFAULT_POLICY), "serving-sans-owned", /IP SAN 10\.0\.0\.9/);
    assert.equal(evaluate(await ctx({ sans: sanCtx({ grants: [], connectionAddress: "::ffff:10.0.0.9" }), ...moved }), DEFAULT_POLICY).allowed, true);
    // ...but it never takes an address another node holds.
    const held = sanCtx({ grants: [], connectionAddress: "10.0.0.9", held: [[sanKey("ip", "10.0.0.9"), { node: "worker-2", via: "certificate" }]] });
    denied(evaluate(await ctx({ sans: held, ...moved }), DEFAULT_POLICY), "serving-san-other-node", /10\.0\.0\.9/);
    denied(evaluate(await ctx({ sans: undefined }), DEFAULT_POLICY), "serving-sans-owned", /could not tell/);
  });

  it("serving-sans-owned: a CIDR approval or a node group grants addresses in it, and {node} names", async () => {
    const groups = [{ nodes: "worker-\\d+", cidrs: ["192.168.10.0/24"], dnsNames: ["{node}.nodes.example.com"] }];
    const c = await ctx({ sans: sanCtx({ grants: [grant("cidr", "10.1.0.0/16", "token:abc123")], nodeGroups: groups }), ...(await csrs({ sans: ["worker-1", "worker-1.nodes.example.com", "192.168.10.5", "10.1.2.3"] })) });
    assert.deepEqual(evaluate(c, DEFAULT_POLICY), { allowed: true });
    denied(evaluate({ ...c, ...(await csrs({ sans: ["192.168.11.5"] })) }, DEFAULT_POLICY), "serving-sans-owned", /192.168.11.5 is not one .*192.168.10.0\/24 \(policy.nodeGroups\[0\]\)/);
    // The group matches the whole name: "worker-1x" is not in it.
    const other = await ctx({ nodeName: "worker-1x", sans: sanCtx({ node: "worker-1x", grants: [], nodeGroups: groups }), ...(await csrs({ node: "worker-1x", sans: ["worker-1x.nodes.example.com"] })) });
    denied(evaluate(other, DEFAULT_POLICY), "serving-sans-owned", /worker-1x.nodes.example.com/);
  });

  it("always refused, each by its own rule, whatever grants them", async () => {
    const cfg: PolicyConfig = { ...DEFAULT_POLICY, controlPlane: controlPlaneSans({ sans: ["cp.example.com", "10.0.0.10", "localhost", "127.0.0.1"], listenHost: "10.0.0.11", apiServerUrl: "https://api.example.com:6443" }) };
    // Everything below is granted by an approval, so only the always-refused rules can stop it.
    const everything = ["192.168.7.7", "0.0.0.0", "::", "255.255.255.255", "224.0.0.1", "ff02::1", "127.0.0.1", "::1", "localhost", "a.localhost", "169.254.1.1", "fe80::1",
      "cp.example.com", "10.0.0.10", "10.0.0.11", "api.example.com", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "metrics-server.kube-system.svc", "10.96.0.1", "10.111.2.3", "10.0.0.2", "worker-2"];
    const granted = sanCtx({ grants: everything.map((v) => grant(/^[0-9a-f:.]+$/.test(v) && (v.includes(":") || /^\d+\.\d+\.\d+\.\d+$/.test(v)) ? "ip" : "dns", v)), held: [[sanKey("ip", "10.0.0.2"), { node: "worker-2", via: "certificate" }], [sanKey("dns", "worker-2"), { node: "worker-2", via: "node-name" }]] });
    const expect = async (san: string, rule: string, reason: RegExp, policy = cfg) => {
      const c = await ctx({ sans: granted, ...(await csrs({ sans: ["worker-1", san] })) });
      denied(evaluate(c, policy), rule, reason);
    };
    // A DNS name that looks like an IP is never retyped into an IP SAN: refused as a name.
    const ipAsDns = await rawCsr(nodeName, [new x509.SubjectAlternativeNameExtension([{ type: "dns", value: "192.168.7.7" }])]);
    assert.deepEqual(ipAsDns.sans, { dns: ["192.168.7.7"], ip: [] });
    denied(evaluate(await ctx({ sans: granted, serving: ipAsDns }), cfg), "serving-san-ip-shaped-dns", /DNS SAN "192.168.7.7" looks like an IP address/);
    const hexDns = await rawCsr(nodeName, [new x509.SubjectAlternativeNameExtension([{ type: "dns", value: "host.0x7f" }])]);
    denied(evaluate(await ctx({ sans: granted, serving: hexDns }), cfg), "serving-san-ip-shaped-dns", /host.0x7f/);
    await expect("0.0.0.0", "serving-san-unspecified", /0.0.0.0 is an unspecified/);
    await expect("::", "serving-san-unspecified", /IP SAN :: is an unspecified/);
    await expect("255.255.255.255", "serving-san-broadcast", /broadcast/);
    await expect("224.0.0.1", "serving-san-multicast", /224.0.0.1 is a multicast/);
    await expect("ff02::1", "serving-san-multicast", /multicast/);
    await expect("127.0.0.1", "serving-san-loopback", /127.0.0.1 is a loopback address .*allowLoopbackSans/);
    await expect("::1", "serving-san-loopback", /::1 is a loopback/);
    await expect("localhost", "serving-san-loopback", /"localhost" is a loopback name/);
    await expect("a.localhost", "serving-san-loopback", /"a.localhost" is a loopback name/);
    await expect("169.254.1.1", "serving-san-link-local", /link-local .*allowLinkLocalSans/);
    await expect("fe80::1", "serving-san-link-local", /link-local/);
    await expect("cp.example.com", "serving-san-control-plane", /"cp.example.com" is one of the control plane's own names/);
    await expect("10.0.0.10", "serving-san-control-plane", /10.0.0.10 is one of the control plane's own addresses/);
    await expect("10.0.0.11", "serving-san-control-plane", /10.0.0.11 is one of the control plane's own addresses/);
    await expect("api.example.com", "serving-san-control-plane", /api.example.com/);
    for (const k of ["kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "metrics-server.kube-system.svc"]) {
      await expect(k, "serving-san-kubernetes-service", /is a Kubernetes service name/);
    }
    await expect("10.96.0.1", "serving-san-service-cidr", /10.96.0.1 is inside the service CIDR \(10.96.0.0\/12\)/);
    await expect("10.111.2.3", "serving-san-service-cidr", /service CIDR/);
    await expect("10.0.0.2", "serving-san-other-node", /IP SAN 10.0.0.2 is held by node "worker-2" \(a live serving certificate\)/);
    await expect("worker-2", "serving-san-other-node", /DNS SAN "worker-2" is the name of node "worker-2"/);
    // The explicit switches allow loopback and link-local; loopback then is "this host" for every
    // node, so neither the control plane's 127.0.0.1 nor another node's counts.
    const lenient: PolicyConfig = { ...cfg, allowLoopbackSans: true, allowLinkLocalSans: true };
    const held = sanCtx({ grants: [grant("ip", "127.0.0.1"), grant("dns", "localhost"), grant("ip", "169.254.1.1")], held: [[sanKey("ip", "127.0.0.1"), { node: "worker-2", via: "certificate" }]] });
    assert.deepEqual(evaluate(await ctx({ sans: held, ...(await csrs({ sans: ["worker-1", "127.0.0.1", "localhost", "169.254.1.1"] })) }), lenient), { allowed: true });
    // ...but the control plane's other names stay refused.
    await expect("10.0.0.10", "serving-san-control-plane", /10.0.0.10/, lenient);
  });

  it("serving-sans-allowed: denies addresses outside allowed CIDRs and names outside the patterns", async () => {
    const cfg: PolicyConfig = { ...DEFAULT_POLICY, allowedCidrs: ["192.168.0.0/16"], allowedDnsPatterns: ["^worker-\\d+$"] };
    const c = await ctx({ ...(await csrs({ sans: ["worker-1", "10.0.0.7"] })) });
    denied(evaluate(c, cfg), "serving-sans-allowed", /10.0.0.7 is outside the allowed CIDRs \(192.168.0.0\/16\)/);
    const c2 = await ctx({ ...(await csrs({ sans: ["worker-1.example.internal"] })) });
    denied(evaluate(c2, { ...cfg, allowedCidrs: ["0.0.0.0/0"] }), "serving-sans-allowed", /matches none of the allowed patterns/);
    assert.equal(evaluate(await ctx({ ...(await csrs({ sans: ["worker-1", "10.0.0.7"] })) }), { ...cfg, allowedCidrs: ["10.0.0.0/24"] }).allowed, true);
  });

  it("key-strength: denies RSA-1024 and algorithms the server does not allow", async () => {
    const c = await ctx();
    denied(evaluate({ ...c, client: await rawCsr(nodeName, [], "RSA-1024") }, DEFAULT_POLICY), "key-strength", /RSA 1024; RSA keys need at least 2048 bits/);
    const ed = await ctx({ ...(await csrs({ alg: "Ed25519" })) });
    assert.equal(evaluate(ed, DEFAULT_POLICY).allowed, true);
    denied(evaluate(ed, { ...DEFAULT_POLICY, allowedKeyAlgorithms: ["ECDSA-P256"] }), "key-strength", /Ed25519; this server allows ECDSA-P256/);
  });

  describe("key-strength: degenerate keys (CSRs made with the openssl CLI, patched by hand)", function () {
    before(function () {
      requireTool(this, "openssl");
    });
    const rsa = (exp?: number) => ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", ...(exp ? ["-pkeyopt", `rsa_keygen_pubexp:${exp}`] : [])];

    it("an RSA key with e = 1 proves no private key: its padded-digest 'signature' verifies, and key-strength refuses it", async () => {
      const made = await opensslCsr({ nodeName: "worker-1", kind: "client", genpkey: rsa() });
      const client = await parseCsr(pem(withRsaExponentOne(made.der, made.keyFile)));
      assert.equal(client.signatureValid, true, "with e = 1 any value equal to the padded digest verifies");
      assert.equal(client.rsaPublicExponent, 1n);
      denied(evaluate(await ctx({ client }), DEFAULT_POLICY), "key-strength", /the client CSR's RSA key has public exponent 1; only 65537 is accepted/);
    });

    it("an RSA key with e = 3 (openssl genpkey rsa_keygen_pubexp:3) is refused; e = 65537 from the same tool is signed", async () => {
      const e3 = await opensslCsr({ nodeName: "worker-1", kind: "serving", sans: ["worker-1", "10.0.0.7"], genpkey: rsa(3) });
      const serving = await parseCsr(pem(e3.der));
      assert.equal(serving.signatureValid, true);
      denied(evaluate(await ctx({ serving }), DEFAULT_POLICY), "key-strength", /the serving CSR's RSA key has public exponent 3; only 65537 is accepted/);
      const f4 = await opensslCsr({ nodeName: "worker-1", kind: "serving", sans: ["worker-1", "10.0.0.7"], genpkey: rsa() });
      assert.deepEqual(evaluate(await ctx({ serving: await parseCsr(pem(f4.der)) }), DEFAULT_POLICY), { allowed: true });
    });

    it("an EC point that is not on the curve is refused by key-strength (OpenSSL will not load it)", async () => {
      const made = await opensslCsr({ nodeName: "worker-1", kind: "client", genpkey: ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"] });
      const good = await parseCsr(pem(made.der));
      assert.equal(good.keyAlgorithm, "ECDSA-P256");
      const client = await parseCsr(pem(withPointOffCurve(made.der)));
      assert.equal(client.keyAlgorithm, undefined);
      denied(evaluate(await ctx({ client }), DEFAULT_POLICY), "key-strength", /the client CSR's key is refused: its EC public point is not on the named curve/);
    });
  });

  describe("FIPS rules", () => {
    const FIPS: PolicyConfig = { ...DEFAULT_POLICY, fips: true };
    const fipsAgent = { provider: "OpenSSL FIPS Provider 3.0.20 (OpenSSL 3.0.19)", fips: true, selfTest: "passed" as const };

    it("fips-algorithms: a FIPS server allows ECDSA P-256/P-384 and RSA ≥ 2048 with SHA-256/384, and refuses Ed25519 with the reason", async () => {
      for (const alg of ["ECDSA-P256", "ECDSA-P384", "RSA-2048"] as const) assert.deepEqual(evaluate(await ctx({ ...(await csrs({ alg })) }), FIPS), { allowed: true }, alg);
      const ed = await ctx({ ...(await csrs({ alg: "Ed25519" })) });
      assert.equal(evaluate(ed, DEFAULT_POLICY).allowed, true, "a default-mode server signs Ed25519");
      denied(evaluate(ed, FIPS), "fips-algorithms", /the client CSR's key is Ed25519: FIPS mode: Ed25519 \(EdDSA\) is not an approved signature algorithm/);
    });

    it("fips-algorithms: a CSR signed with SHA-1 (made by the openssl CLI) is refused by a FIPS server, not by a default one", async function () {
      requireTool(this, "openssl");
      const r = await run("openssl", ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "/dev/null", "-sha1", "-subj", "/O=system:nodes/CN=system:node:worker-1"]);
      assert.equal(r.code, 0, r.stderr);
      const client = await parseCsr(r.stdout);
      assert.deepEqual(client.signatureAlgorithm, { name: "ECDSA", hash: "SHA-1" });
      const c = await ctx({ client });
      assert.equal(evaluate(c, DEFAULT_POLICY).allowed, true);
      denied(evaluate(c, FIPS), "fips-algorithms", /the client CSR is signed with ECDSA\/SHA-1: FIPS mode: signatures with SHA-1 are not allowed; use SHA-256 or SHA-384/);
    });

    it("fips-node: with requireFipsNodes only an agent reporting a passed FIPS self-test is allowed", async () => {
      const cfg: PolicyConfig = { ...DEFAULT_POLICY, requireFipsNodes: true };
      const base = await ctx();
      assert.deepEqual(evaluate({ ...base, facts: { ...facts, crypto: fipsAgent } }, cfg), { allowed: true });
      denied(evaluate(base, cfg), "fips-node", /did not report its crypto provider/);
      denied(evaluate({ ...base, facts: { ...facts, crypto: { provider: "OpenSSL default provider (OpenSSL 3.0.19)", fips: false, selfTest: "passed" } } }, cfg), "fips-node", /runs on OpenSSL default provider .*FIPS off/);
      denied(evaluate({ ...base, facts: { ...facts, crypto: { ...fipsAgent, selfTest: "not-run" } } }, cfg), "fips-node", /FIPS claimed, self-test not-run/);
      assert.equal(evaluate(base, DEFAULT_POLICY).allowed, true, "without requireFipsNodes the crypto report is not needed");
    });
  });
});
