import { strict as assert } from "node:assert";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { applyInstall, pendingFile, recoverPendingInstall, type InstallPlan } from "../../src/agent/apply.js";
import { nodeLayout } from "../../src/agent/layout.js";
import { readState } from "../../src/agent/state.js";
import { writeState } from "../../src/agent/state.js";
import { createSelfSignedCa, issueLeaf } from "../../src/pki/certificate.js";
import { createNodeCsr, nodeSubject, parseCsr } from "../../src/pki/csr.js";
import { exportPrivateKeyPem, generateKeyPair } from "../../src/pki/keys.js";
import { keyMatchesCertificate } from "../../src/pki/verify.js";
import { ensureDir } from "../../src/platform/files.js";
import { FakeClock, random, tempDir } from "../support/helpers.js";
import { splitSans } from "../../src/pki/names.js";

async function plan(clock: FakeClock): Promise<InstallPlan> {
  const caKeys = await generateKeyPair("ECDSA-P256");
  const caPem = await createSelfSignedCa({ commonName: "ca", keys: caKeys, now: clock.now(), lifetimeMs: 86_400_000 * 365, random });
  const pair = async (kind: "client" | "serving") => {
    const k = await generateKeyPair("ECDSA-P256");
    const spki = (await parseCsr(await createNodeCsr({ kind, nodeName: "n1", keys: k, sans: ["n1"] }))).spki;
    const leaf = await issueLeaf({ issuer: { certPem: caPem, privateKey: caKeys.privateKey, algorithm: "ECDSA-P256" }, subject: nodeSubject("n1"), spki, kind, sans: splitSans(["n1"]), now: clock.now(), lifetimeMs: 86_400_000, random });
    return { chainPem: leaf.pem, keyPem: await exportPrivateKeyPem(k.privateKey) };
  };
  return { nodeName: "n1", server: "https://cp:9443", caPin: "sha256:" + "1".repeat(64), apiServer: "https://cp:6443", caBundle: caPem, pairs: { client: await pair("client"), serving: await pair("serving") }, at: clock.now().toISOString() };
}

describe("agent/apply: crash-safe install", () => {
  it("finishes an install interrupted after the plan was written, without duplicating files", async () => {
    const clock = new FakeClock();
    const layout = nodeLayout(path.join(tempDir(), "root"));
    const p = await plan(clock);
    // Simulate a crash right after the plan hit the disk: only the pending file exists.
    await ensureDir(layout.stateDir);
    writeFileSync(pendingFile(layout), JSON.stringify(p), { mode: 0o600 });
    assert.equal(await recoverPendingInstall(layout, clock.now()), true);
    for (const kind of ["client", "serving"] as const) {
      const pem = readFileSync(layout.current(kind), "utf8");
      assert.ok(keyMatchesCertificate(pem, pem.slice(pem.indexOf("-----BEGIN PRIVATE KEY"))));
    }
    assert.ok(!existsSync(pendingFile(layout)));
    const files = readdirSync(layout.pkiDir).sort();
    // Running recovery again (a second crash at the end) changes nothing.
    writeFileSync(pendingFile(layout), JSON.stringify(p), { mode: 0o600 });
    await recoverPendingInstall(layout, clock.now());
    assert.deepEqual(readdirSync(layout.pkiDir).sort(), files);
    assert.equal((await readState(layout))?.nodeName, "n1");
  });

  it("keeps the previous file and gives a second install in the same second a distinct name", async () => {
    const clock = new FakeClock();
    const layout = nodeLayout(path.join(tempDir(), "root"));
    await applyInstall(layout, await plan(clock), clock.now());
    await applyInstall(layout, await plan(clock), clock.now());
    const names = readdirSync(layout.pkiDir).filter((n) => n.startsWith("kubelet-client-2")).sort();
    assert.deepEqual(names, ["kubelet-client-2026-06-01-00-00-00-1.pem", "kubelet-client-2026-06-01-00-00-00.pem"]);
  });

  it("refuses state written by a newer agent instead of overwriting it", async () => {
    const layout = nodeLayout(path.join(tempDir(), "root"));
    await writeState(layout, { schemaVersion: 99 } as never);
    await assert.rejects(readState(layout), /schema version 99, newer than this agent understands/);
  });
});
