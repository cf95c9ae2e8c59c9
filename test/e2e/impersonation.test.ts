// Nothing but the control plane can act as the control plane: a node's certificate (from the same
// CA, with the control plane's address in its SANs) standing in at that address gets no token, no
// channel and no trust; and a pushed trust bundle may add only a CA the current CA vouches for.
import { strict as assert } from "node:assert";
import { existsSync, readFileSync } from "node:fs";
import https from "node:https";
import path from "node:path";
import { WebSocketServer, type WebSocket } from "ws";
import { freePort, nodecert, random, startServer, tempDir, type TestServer } from "../support/helpers.js";
import { startFleetAgent, until, type FleetAgent } from "../support/fleet.js";
import { nodeLayout } from "../../src/agent/layout.js";
import { certificateInfo, EKU_NODECERT_CONTROL_PLANE, EKU_SERVER_AUTH } from "../../src/pki/certificate-info.js";
import { crossSignCa, createSelfSignedCa } from "../../src/pki/certificate.js";
import { generateKeyPair } from "../../src/pki/keys.js";
import { splitCertificates } from "../../src/pki/pem.js";
import { loadCa } from "../../src/server/ca/ca.js";
import { CHANNEL_PATH } from "../../src/server/fleet/hub.js";

interface Impostor {
  port: number;
  /** Every HTTP request: method, path and Authorization header. */
  requests: string[];
  /** WebSocket upgrades that reached the application (after TLS). */
  upgrades: number;
  /** TCP connections made to the impostor (each one a handshake the client then judged). */
  connections: number;
  /** Acks the agents sent back. */
  acks: { commandId: string; result: string; error?: string }[];
  sockets: WebSocket[];
  close(): Promise<void>;
}

/** An HTTPS + WSS server on `port` with `certPem`/`keyPem`, serving `caBundle` at /v1/ca like the real one. */
async function impostor(port: number, certPem: string, keyPem: string, caBundle: string, onConnection?: (ws: WebSocket) => void): Promise<Impostor> {
  const me: Impostor = { port, requests: [], upgrades: 0, connections: 0, acks: [], sockets: [], close: async () => undefined };
  const server = https.createServer({ cert: certPem, key: keyPem, minVersion: "TLSv1.3" }, (req, res) => {
    me.requests.push(`${req.method} ${req.url} ${req.headers.authorization ?? ""}`.trim());
    res.setHeader("content-type", "application/json");
    if (req.url === "/v1/ca") return res.end(JSON.stringify({ v: 1, caBundle }));
    res.statusCode = 500;
    res.end("{}");
  });
  server.on("connection", () => me.connections++);
  const wss = new WebSocketServer({ noServer: true });
  server.on("upgrade", (req, socket, head) => {
    me.upgrades++;
    if (new URL(req.url ?? "/", "https://x").pathname !== CHANNEL_PATH) return socket.destroy();
    wss.handleUpgrade(req, socket, head, (ws) => {
      me.sockets.push(ws);
      ws.on("message", (d) => {
        const m = JSON.parse(d.toString()) as { type: string; commandId: string; result: string; error?: string };
        if (m.type === "ack") me.acks.push(m);
      });
      onConnection?.(ws);
    });
  });
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
  me.close = async () => {
    for (const s of me.sockets) s.terminate();
    wss.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  return me;
}

const bundleOf = (a: FleetAgent) => readFileSync(nodeLayout(a.root).caFile, "utf8");

describe("e2e: only the control plane can act as the control plane", function () {
  this.timeout(120_000);
  const closers: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
  });

  it("the server's TLS certificate carries the control-plane identity; node certificates never do", async () => {
    const server = await startServer();
    closers.push(() => server.close());
    const a = await startFleetAgent(server, "eku-1");
    closers.push(() => a.agent.close());
    const tls = certificateInfo(readFileSync(server.paths.tlsCert, "utf8"));
    assert.deepEqual(tls.extendedKeyUsages, [EKU_SERVER_AUTH, EKU_NODECERT_CONTROL_PLANE]);
    for (const kind of ["client", "serving"] as const) {
      assert.ok(!certificateInfo(readFileSync(nodeLayout(a.root).current(kind), "utf8")).extendedKeyUsages.includes(EKU_NODECERT_CONTROL_PLANE), kind);
    }
    assert.ok(!certificateInfo(readFileSync(server.paths.adminCert, "utf8")).extendedKeyUsages.includes(EKU_NODECERT_CONTROL_PLANE));
  });

  it("a node's certificate at the control plane's address: the channel, join, renewal and the admin client all refuse it; no token, no bundle reaches it", async () => {
    const port = await freePort();
    const server = await startServer({ listen: `127.0.0.1:${port}` });
    let real: TestServer | undefined = server;
    closers.push(() => real?.close() ?? Promise.resolve());
    const victim = await startFleetAgent(server, "victim-1");
    closers.push(() => victim.agent.close());
    const mallory = await startFleetAgent(server, "mallory-1");
    await mallory.agent.close();
    // mallory's serving certificate holds 127.0.0.1 (tests allow loopback SANs) and chains to the CA.
    const stolen = readFileSync(nodeLayout(mallory.root).current("serving"), "utf8");
    assert.ok(certificateInfo(stolen).sans.ip.includes("127.0.0.1"));
    const caBefore = bundleOf(victim);
    const attackerCa = await createSelfSignedCa({ commonName: "attacker-ca", keys: await generateKeyPair("ECDSA-P256"), now: new Date(), lifetimeMs: 86_400_000, random });

    await until("victim connected", () => server.hub.connected("victim-1"));
    await server.close();
    real = undefined;
    // It would push a bundle with its own CA to anyone who got as far as a WebSocket.
    const fake = await impostor(port, stolen, stolen, server.ca.bundlePem, (ws) =>
      ws.send(JSON.stringify({ v: 1, id: "evil-bundle", type: "trust-bundle", bundle: server.ca.bundlePem + attackerCa })),
    );
    closers.push(() => fake.close());

    // The agent's channel reconnects, sees the certificate in the handshake and refuses it: no upgrade.
    await until("the agent tried the impostor twice (or got through)", () => fake.connections >= 2 || fake.upgrades > 0, 30_000);
    assert.equal(fake.upgrades, 0, "no WebSocket request reached the impostor");
    assert.equal(victim.agent.channel?.connected, false);

    // Renewal: refused in the handshake, nothing installed.
    const servingBefore = readFileSync(nodeLayout(victim.root).current("serving"), "utf8");
    const out = await victim.agent.renewer.renew(["serving"], { force: true });
    assert.deepEqual(out.renewed, []);
    assert.match(out.error ?? "", /not a nodecert control-plane certificate: it lacks the control-plane extended key usage/);
    assert.equal(readFileSync(nodeLayout(victim.root).current("serving"), "utf8"), servingBefore);

    // join: the pin matches (the impostor serves the real, public CA), TLS verifies against it, the
    // host name matches, and still the token is not sent.
    const root = path.join(tempDir(), "node");
    const token = "abcdef.0123456789abcdef";
    const j = await nodecert(["join", "--server", `https://127.0.0.1:${port}`, "--token", token, "--ca-cert-hash", server.pin, "--root", root, "--node-name", "new-1"]);
    assert.equal(j.code, 1, j.stderr);
    assert.match(j.stderr, /https:\/\/127\.0\.0\.1:\d+: the server's certificate \("system:node:mallory-1", issued by "nodecert-ca"\) is not a nodecert control-plane certificate/);
    assert.deepEqual(fake.requests, ["GET /v1/ca"], "only the unauthenticated CA fetch reached it; no Authorization header ever did");
    assert.ok(!existsSync(nodeLayout(root).caFile), "nothing installed");

    // The admin client refuses it too (it would otherwise send admin requests to it).
    const nodes = await nodecert(["nodes", "--dir", server.dir, "--server", `https://127.0.0.1:${port}`]);
    assert.equal(nodes.code, 1);
    assert.match(nodes.stderr, /is not a nodecert control-plane certificate/);
    assert.deepEqual(fake.requests, ["GET /v1/ca"]);

    assert.equal(fake.upgrades, 0);
    assert.equal(bundleOf(victim), caBefore, "the victim's ca.crt is untouched");
  });

  it("a pushed bundle may add only a CA the trusted CA vouches for: an unvouched or self-vouched attacker CA is refused and not installed", async () => {
    const port = await freePort();
    const server = await startServer({ listen: `127.0.0.1:${port}` });
    let real: TestServer | undefined = server;
    closers.push(() => real?.close() ?? Promise.resolve());
    const a = await startFleetAgent(server, "bundle-1");
    closers.push(() => a.agent.close());
    await until("connected", () => server.hub.connected("bundle-1"));
    const realCa = await loadCa((await import("../../src/server/paths.js")).serverPaths(server.dir));
    const before = bundleOf(a);
    await server.close();
    real = undefined;

    // The worst case short of the CA key: the control plane's own TLS key and certificate.
    const tlsChain = readFileSync(server.paths.tlsCert, "utf8");
    const tlsKey = readFileSync(server.paths.tlsKey, "utf8");
    let connected: WebSocket | undefined;
    const fake = await impostor(port, tlsChain, tlsKey, server.ca.bundlePem, (ws) => (connected = ws));
    closers.push(() => fake.close());
    await until("the agent connected to the stand-in", () => connected, 30_000);

    const attackerKeys = await generateKeyPair("ECDSA-P256");
    const attackerCa = await createSelfSignedCa({ commonName: "attacker-ca", keys: attackerKeys, now: new Date(), lifetimeMs: 86_400_000, random });
    const selfVouched = await crossSignCa({ subjectCertPem: attackerCa, issuer: { certPem: attackerCa, privateKey: attackerKeys.privateKey, algorithm: "ECDSA-P256" }, now: new Date(), random });
    // Same subject as the real CA, the attacker's key, "vouched" by the attacker.
    const lookalikeKeys = await generateKeyPair("ECDSA-P256");
    const lookalike = await createSelfSignedCa({ commonName: certificateInfo(realCa.issuer.certPem).subjectCN!, keys: lookalikeKeys, now: new Date(), lifetimeMs: 86_400_000, random });
    const push = async (id: string, bundle: string, vouchers?: string[]) => {
      connected!.send(JSON.stringify({ v: 1, id, type: "trust-bundle", bundle, vouchers }));
      return until(`ack ${id}`, () => fake.acks.find((x) => x.commandId === id));
    };
    for (const [id, bundle, vouchers] of [
      ["no-voucher", realCa.bundlePem + attackerCa, undefined],
      ["self-vouched", realCa.bundlePem + attackerCa, [selfVouched]],
      ["lookalike", realCa.bundlePem + lookalike, []],
      ["replaced", attackerCa, [selfVouched]],
    ] as [string, string, string[] | undefined][]) {
      const ack = await push(id, bundle, vouchers);
      assert.equal(ack.result, "error", id);
      assert.match(ack.error ?? "", /the bundle adds CA .* and no voucher from a CA this node trusts vouches for it; refusing it/, id);
      assert.equal(bundleOf(a), before, `${id}: ca.crt unchanged`);
    }

    // What a CA rotation sends: a new CA with a cross-certificate from the trusted one. Installed.
    const nextKeys = await generateKeyPair("ECDSA-P256");
    const next = await createSelfSignedCa({ commonName: "nodecert-ca-next", keys: nextKeys, now: new Date(), lifetimeMs: 86_400_000, random });
    const cross = await crossSignCa({ subjectCertPem: next, issuer: realCa.issuer, now: new Date(), random });
    const ok = await push("vouched", realCa.bundlePem + next, [cross]);
    assert.equal(ok.result, "ok", ok.error);
    assert.deepEqual(splitCertificates(bundleOf(a)).map((c) => certificateInfo(c).subjectCN), ["nodecert-ca", "nodecert-ca-next"]);
    // Dropping a CA needs no voucher (the bundle still verifies the server's certificate).
    const dropped = await push("drop", realCa.bundlePem, []);
    assert.equal(dropped.result, "ok", dropped.error);
    assert.equal(bundleOf(a), realCa.bundlePem);
  });
});
