// The running server keeps its own TLS and admin certificates valid: re-issued at start and by
// the periodic check, hot-swapped into the listening server, seen by openssl, agents and the admin CLI.
import { strict as assert } from "node:assert";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { initServer } from "../../../src/server/init.js";
import { runServer, type RunningServer } from "../../../src/server/run.js";
import { serverPaths, type ServerPaths } from "../../../src/server/paths.js";
import { leafSerial } from "../../../src/server/ca/service-cert-decision.js";
import { certificateInfo, EKU_NODECERT_CONTROL_PLANE, EKU_SERVER_AUTH, normalizeSerial } from "../../../src/pki/certificate-info.js";
import { issueLeaf } from "../../../src/pki/certificate.js";
import { exportPrivateKeyPem, generateKeyPair } from "../../../src/pki/keys.js";
import { splitSans } from "../../../src/pki/names.js";
import { loadCa } from "../../../src/server/ca/ca.js";
import { splitCertificates } from "../../../src/pki/pem.js";
import { generateToken, hashSecret, parseToken } from "../../../src/server/tokens.js";
import { captureLogger, FakeClock, nodecert, random, requireTool, run, tempDir } from "../../support/helpers.js";

const DAY = 86_400_000;
const SANS = ["localhost", "127.0.0.1"];

interface Started {
  server: RunningServer;
  lines: string[];
  /** Timers the server scheduled, fired by hand (no real hour passes). */
  timers: { fn: () => void; ms: number }[];
}

async function start(dir: string, clock: FakeClock, configOverrides?: Record<string, unknown>): Promise<Started> {
  const { logger, lines } = captureLogger("server");
  const timers: Started["timers"] = [];
  const server = await runServer({
    dir,
    logger,
    clock: clock.now,
    configOverrides,
    setTimer: (fn, ms) => {
      const t = { fn, ms };
      timers.push(t);
      return { cancel: () => void timers.splice(timers.indexOf(t) >>> 0, 1) };
    },
  });
  return { server, lines, timers };
}

async function init(dir: string, now: Date): Promise<ServerPaths> {
  await initServer({ dir, listen: "127.0.0.1:0", sans: SANS, allowLoopbackSans: true, now, random });
  return serverPaths(dir);
}

const serials = (p: ServerPaths) => ({ server: leafSerial(readFileSync(p.tlsCert, "utf8")), admin: leafSerial(readFileSync(p.adminCert, "utf8")) });

/** The certificate a fresh TLS client is served, verified by openssl against the CA (real clock). */
async function served(s: RunningServer): Promise<ReturnType<typeof certificateInfo>> {
  const r = await run("openssl", ["s_client", "-connect", `127.0.0.1:${s.port}`, "-CAfile", s.paths.caBundle, "-verify_return_error", "-tls1_3"], { input: "" });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /Verify return code: 0 \(ok\)/);
  return certificateInfo(splitCertificates(r.stdout)[0]);
}

function reissueLines(lines: string[]): Record<string, string>[] {
  return lines.map((l) => JSON.parse(l) as Record<string, string>).filter((l) => /^re-issued the /.test(l.message));
}

function assertModes(p: ServerPaths): void {
  for (const [f, mode] of [[p.tlsCert, 0o644], [p.tlsKey, 0o600], [p.adminCert, 0o600], [p.adminKey, 0o600], [p.tlsDir, 0o700], [p.adminDir, 0o700]] as const) {
    assert.equal(statSync(f).mode & 0o777, mode, `${f} mode`);
  }
}

describe("server: its own TLS and admin certificates are renewed while it runs", function () {
  beforeEach(function () {
    requireTool(this, "openssl");
  });

  it("re-issues both at startup when init issued them 300 days ago; openssl and the admin CLI accept the new ones", async () => {
    const dir = path.join(tempDir(), "srv");
    const p = await init(dir, new Date(Date.now() - 300 * DAY));
    const before = serials(p);
    const { server, lines } = await start(dir, new FakeClock(Date.now()));
    try {
      const after = serials(p);
      assert.notEqual(after.server, before.server, "TLS certificate re-issued");
      assert.notEqual(after.admin, before.admin, "admin certificate re-issued");
      const tls = await served(server);
      assert.equal(tls.serial, after.server, "the listening server serves the new certificate");
      assert.ok(tls.notAfter.getTime() > Date.now() + 364 * DAY);
      const logged = reissueLines(lines);
      assert.deepEqual(logged.map((l) => l.certificate).sort(), ["admin", "server"]);
      for (const l of logged) {
        assert.match(l.reason, /two thirds of its lifetime have passed/);
        assert.equal(l.trigger, "startup");
        assert.ok(Date.parse(l.notAfter) > Date.now() + 364 * DAY, `new expiry logged: ${l.notAfter}`);
      }
      assert.ok(!lines.some((l) => /PRIVATE KEY|BEGIN CERT/.test(l)), "no key or certificate material in the logs");
      assertModes(p);
      // Recorded like init records them: the admin check finds the serial with kind "admin".
      assert.equal((await server.store.getCertificate(after.admin!))?.kind, "admin");
      assert.equal((await server.store.getCertificate(after.server!))?.kind, "server");
      const nodes = await nodecert(["nodes", "--dir", dir, "--server", server.url]);
      assert.equal(nodes.code, 0, nodes.stderr);
      assert.match(nodes.stdout, /^NODE\s+CONNECTED/);
    } finally {
      await server.close();
    }
  });

  it("leaves fresh certificates alone, then the periodic check re-issues them once due and the running server serves the new one", async () => {
    const dir = path.join(tempDir(), "srv");
    // Issued 250 days before the real now, so after advancing the fake clock to the real now the
    // re-issued certificates are valid for the real-clock peers (openssl, join, the admin CLI).
    const clock = new FakeClock(Date.now() - 250 * DAY);
    const p = await init(dir, clock.now());
    const initial = serials(p);
    let s = await start(dir, clock);
    try {
      assert.deepEqual(serials(p), initial, "nothing re-issued while fresh");
      assert.deepEqual(reissueLines(s.lines), []);
      assert.equal(s.timers.length, 1);
      assert.equal(s.timers[0].ms, 3_600_000, "checked hourly");
      const oldServed = await served(s.server);
      assert.equal(oldServed.serial, initial.server);

      // An hour of nothing: still nothing to do.
      clock.advance(3_600_000);
      s.timers.shift()!.fn();
      await s.server.serviceCerts.idle();
      assert.deepEqual(serials(p), initial);

      // 250 days in, past two thirds of the year: the next check re-issues, with no restart.
      clock.advance(250 * DAY - 3_600_000);
      await new Promise((r) => setImmediate(r));
      assert.equal(s.timers.length, 1, "re-armed after the check");
      s.timers.shift()!.fn();
      await s.server.serviceCerts.idle();
      const renewed = serials(p);
      assert.notEqual(renewed.server, initial.server);
      assert.notEqual(renewed.admin, initial.admin);
      const newServed = await served(s.server);
      assert.equal(newServed.serial, renewed.server, "hot-reloaded: new TLS connections get the new certificate");
      assert.deepEqual(reissueLines(s.lines).map((l) => [l.certificate, l.trigger]), [["server", "periodic check"], ["admin", "periodic check"]]);
      assertModes(p);

      // The admin CLI authenticates with the re-issued admin certificate...
      const nodes = await nodecert(["nodes", "--dir", dir, "--server", s.server.url, "-o", "json"]);
      assert.equal(nodes.code, 0, nodes.stderr);
      // ...and an agent joins against the re-issued TLS certificate.
      const token = generateToken(random);
      const { id, secret } = parseToken(token)!;
      await s.server.store.insertToken({ id, secretHash: hashSecret(secret), usesLeft: 1, expiresAt: new Date(clock.t + 3_600_000), createdAt: clock.now() });
      const pin = (await initServer({ dir, now: clock.now(), random })).pin;
      const root = path.join(tempDir(), "node");
      const j = await nodecert(["join", "--server", s.server.url, "--token", token, "--ca-cert-hash", pin, "--root", root, "--node-name", "n1", "--address", "127.0.0.1"]);
      assert.equal(j.code, 0, j.stderr);

      // Idempotent: another check, and a restart, change nothing.
      await new Promise((r) => setImmediate(r));
      s.timers.shift()!.fn();
      await s.server.serviceCerts.idle();
      assert.deepEqual(serials(p), renewed);
      await s.server.close();
      s = await start(dir, clock);
      assert.deepEqual(serials(p), renewed, "a restart re-issues nothing");
      assert.deepEqual(reissueLines(s.lines), []);
    } finally {
      await s.server.close();
    }
  });

  it("re-issues only the TLS certificate when server.yaml's sans change, and one whose key does not match", async () => {
    const dir = path.join(tempDir(), "srv");
    const clock = new FakeClock(Date.now());
    const p = await init(dir, clock.now());
    const initial = serials(p);
    let s = await start(dir, clock, { sans: [...SANS, "cp.example.internal"] });
    try {
      const after = serials(p);
      assert.notEqual(after.server, initial.server);
      assert.equal(after.admin, initial.admin, "the admin certificate has no SANs: kept");
      assert.deepEqual(certificateInfo(readFileSync(p.tlsCert, "utf8")).sans, { dns: ["cp.example.internal", "localhost"], ip: ["127.0.0.1"] });
      assert.match(reissueLines(s.lines)[0].reason, /SANs are DNS\[localhost\] IP\[127\.0\.0\.1\], server.yaml sans ask for DNS\[cp.example.internal,localhost\]/);
      await s.server.close();

      // A crash between writing the new key and the new certificate leaves a mismatched pair,
      // which would make the HTTPS server refuse to start; the startup check repairs it first.
      writeFileSync(p.tlsKey, readFileSync(p.adminKey));
      s = await start(dir, clock, { sans: [...SANS, "cp.example.internal"] });
      assert.match(reissueLines(s.lines)[0].reason, /the key file does not belong to the certificate/);
      assert.equal((await served(s.server)).serial, normalizeSerial(serials(p).server!));
      assert.equal(serials(p).admin, initial.admin);
    } finally {
      await s.server.close();
    }
  });

  it("re-issues a TLS certificate without the control-plane identity (one from an older release) at start; the admin CLI accepts the new one", async () => {
    const dir = path.join(tempDir(), "srv");
    const clock = new FakeClock(Date.now());
    const p = await init(dir, clock.now());
    // What an older release issued: serverAuth only, recorded like any server certificate.
    const ca = await loadCa(p);
    const keys = await generateKeyPair("ECDSA-P256");
    const old = await issueLeaf({ issuer: ca.issuer, subject: [{ CN: ["nodecert-server"] }], spki: await crypto.subtle.exportKey("spki", keys.publicKey), kind: "serving", sans: splitSans(SANS), now: clock.now(), lifetimeMs: 365 * DAY, random });
    writeFileSync(p.tlsKey, await exportPrivateKeyPem(keys.privateKey));
    writeFileSync(p.tlsCert, old.pem);
    const s0 = new (await import("../../../src/server/store/sqlite.js")).SqliteStore(p.db);
    await s0.recordCertificate({ serial: old.serial, node: "nodecert:server", kind: "server", notBefore: old.notBefore, notAfter: old.notAfter, fingerprint256: certificateInfo(old.pem).fingerprint256, issuedAt: clock.now() });
    await s0.close();
    const admin = serials(p).admin;
    const s = await start(dir, clock);
    try {
      const [line] = reissueLines(s.lines);
      assert.equal(line.certificate, "server");
      assert.match(line.reason, new RegExp(`it lacks the extended key usage nodecert control-plane \\(${EKU_NODECERT_CONTROL_PLANE.replace(/\./g, "\\.")}\\)`));
      const tls = await served(s.server);
      assert.notEqual(tls.serial, old.serial);
      assert.deepEqual(tls.extendedKeyUsages, [EKU_SERVER_AUTH, EKU_NODECERT_CONTROL_PLANE]);
      assert.equal(serials(p).admin, admin, "the admin certificate was fine");
      const nodes = await nodecert(["nodes", "--dir", dir, "--server", s.server.url]);
      assert.equal(nodes.code, 0, nodes.stderr);
    } finally {
      await s.server.close();
    }
  });
});
