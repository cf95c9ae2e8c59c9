// The pin operators published keeps working through a CA rotation while the old CA is in the
// bundle (the new CA is cross-signed by the old one), the new pin works once the new CA signs,
// and `nodecert ca status` says which pins are valid for joins at each moment.
import { strict as assert } from "node:assert";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { nodecert, requireTool, run, startServer, tempDir, type TestServer } from "../support/helpers.js";
import { nodeLayout } from "../../src/agent/layout.js";
import { certificateInfo } from "../../src/pki/certificate-info.js";
import { splitCertificates } from "../../src/pki/pem.js";
import { loadCa } from "../../src/server/ca/ca.js";
import { nextCaPaths } from "../../src/server/fleet/ca-rotation.js";

describe("e2e: join pins across a CA rotation", function () {
  this.timeout(180_000);
  let server: TestServer;
  after(async () => server?.close());

  it("the original pin joins before, during prepare and switch; the new pin from the switch on; ca status lists exactly the pins that work", async function () {
    requireTool(this, "openssl");
    server = await startServer({ overrides: { caRotation: { autoAdvance: false } } });
    const admin = (...args: string[]) => nodecert([...args, "--dir", server.dir, "--server", server.url]);
    const oldPin = server.pin;
    const oldCa = server.ca.bundlePem;
    let n = 0;
    const join = async (pin: string) => {
      const root = path.join(tempDir(), "node");
      const token = await server.createToken();
      const r = await nodecert(["join", "--server", server.url, "--token", token, "--ca-cert-hash", pin, "--root", root, "--node-name", `pin-${++n}`]);
      return { ...r, root, tokenLeft: (await server.store.getToken(token.split(".")[0]))!.usesLeft };
    };
    const joins = async (pin: string) => {
      const r = await join(pin);
      assert.equal(r.code, 0, `join with ${pin}: ${r.stderr}`);
      // It trusts the pinned CA (and whatever else the authenticated join response's bundle held).
      assert.ok(splitCertificates(readFileSync(nodeLayout(r.root).caFile, "utf8")).some((c) => certificateInfo(c).spkiPin === pin));
    };
    /** The pins `ca status` calls valid, and the ones it calls not valid. */
    const statusPins = async () => {
      const s = await admin("ca", "status");
      assert.equal(s.code, 0, s.stderr);
      const valid = [...s.stdout.matchAll(/(sha256:[0-9a-f]{64})  valid /g)].map((m) => m[1]);
      const invalid = [...s.stdout.matchAll(/(sha256:[0-9a-f]{64})  not valid /g)].map((m) => m[1]);
      return { valid, invalid, out: s.stdout };
    };
    /** openssl s_client anchored in one CA only, as a join is. */
    const opensslVerifies = async (caPem: string) => {
      const f = path.join(tempDir(), "ca.pem");
      writeFileSync(f, caPem);
      const c = await run("openssl", ["s_client", "-connect", server.url.replace("https://", ""), "-CAfile", f, "-verify_return_error", "-tls1_3"], { input: "" });
      return /Verify return code: 0 \(ok\)/.test(c.stdout);
    };

    // Before any rotation.
    await joins(oldPin);
    assert.deepEqual((await statusPins()).valid, [oldPin]);

    // Prepare: the bundle holds old + new; the old CA still signs the server's certificate.
    const started = await admin("ca", "rotate");
    assert.match(started.stdout, /phase prepare/);
    const next = await loadCa(nextCaPaths(server.paths));
    const newPin = next.pin;
    assert.notEqual(newPin, oldPin);
    await joins(oldPin);
    const prep = await statusPins();
    assert.deepEqual(prep.valid, [oldPin], prep.out);
    assert.deepEqual(prep.invalid, [newPin], "the new CA does not anchor the server's chain yet");
    const early = await join(newPin);
    assert.equal(early.code, 1, "ca status said so: the new pin does not work yet");
    assert.match(early.stderr, new RegExp(`SELF_SIGNED_CERT_IN_CHAIN .*the server's TLS certificate does not chain to the pinned CA ${newPin}, so the token was not sent.*'nodecert ca status'`));
    assert.equal(early.tokenLeft, 1, "the token was not spent");

    // Switch (forced past the nodes above, which run no agent): the new CA signs; the server's
    // chain is leaf + the new CA cross-signed by the old one, so both pins anchor it.
    const sw = await admin("ca", "advance", "--force");
    assert.match(sw.stdout, /phase switch/);
    assert.equal(certificateInfo(readFileSync(server.paths.tlsCert, "utf8")).issuer, certificateInfo(next.issuer.certPem).subject);
    assert.ok(await opensslVerifies(oldCa), "openssl anchored in the old CA alone verifies the server (via the cross-certificate)");
    assert.ok(await opensslVerifies(next.bundlePem), "openssl anchored in the new CA alone verifies it");
    const swp = await statusPins();
    assert.deepEqual(swp.valid.sort(), [oldPin, newPin].sort(), swp.out);
    await joins(oldPin);
    await joins(newPin);

    // Finish: the old CA leaves the bundle, so its pin no longer matches; the new one joins.
    const fin = await admin("ca", "advance", "--force");
    assert.match(fin.stdout, /phase done/);
    const done = await statusPins();
    assert.deepEqual(done.valid, [newPin], done.out);
    assert.deepEqual(done.invalid, []);
    const late = await join(oldPin);
    assert.equal(late.code, 1);
    assert.match(late.stderr, new RegExp(`CA pin mismatch: expected ${oldPin}, the server at .* presented ${newPin}`));
    await joins(newPin);
  });
});
