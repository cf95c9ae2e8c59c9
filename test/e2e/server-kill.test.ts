// kill -9 of the control plane (`nodecert server run`, its own process) in the middle of a
// rotation campaign and in each phase of a CA rotation, restarted on the same directory each
// time: the campaign and the rotation finish with 0 failed nodes, every agent ends on new-CA
// certificates it can use, and SQLite's integrity check says ok.
import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { nodecert, requireTool, run } from "../support/helpers.js";
import { startFleetAgent, until, type FleetAgent } from "../support/fleet.js";
import { serverProcess, type ServerProcess } from "../support/server-process.js";
import { nodeLayout } from "../../src/agent/layout.js";
import { certificateInfo } from "../../src/pki/certificate-info.js";
import { splitCertificates } from "../../src/pki/pem.js";
import type { CaRotationState } from "../../src/server/fleet/ca-rotation.js";

interface DbView {
  rotation?: CaRotationState;
  campaign(id: string): { state: string; counts: Record<string, number> } | undefined;
  issuerOf(serial: string): string | undefined;
  certNode(serial: string): string | undefined;
}

/** Reads the server's database read-only while it runs (WAL lets a reader in). */
function db(server: ServerProcess, read: (v: DbView) => unknown): unknown {
  const d = new Database(path.join(server.dir, "nodecert.db"), { readonly: true, fileMustExist: true });
  try {
    const kv = d.prepare("SELECT value FROM kv WHERE key = 'ca-rotation'").get() as { value: string } | undefined;
    return read({
      rotation: kv ? (JSON.parse(kv.value) as CaRotationState) : undefined,
      campaign: (id) => {
        const c = d.prepare("SELECT state FROM campaigns WHERE id = ?").get(id) as { state: string } | undefined;
        if (!c) return undefined;
        const counts: Record<string, number> = { pending: 0, "in-flight": 0, done: 0, failed: 0 };
        for (const r of d.prepare("SELECT state, COUNT(*) AS n FROM campaign_nodes WHERE campaign_id = ? GROUP BY state").all(id) as { state: string; n: number }[]) counts[r.state] = r.n;
        return { state: c.state, counts };
      },
      issuerOf: (serial) => (d.prepare("SELECT issuer_fp FROM certificates WHERE serial = ?").get(serial) as { issuer_fp: string } | undefined)?.issuer_fp,
      certNode: (serial) => (d.prepare("SELECT node FROM certificates WHERE serial = ?").get(serial) as { node: string } | undefined)?.node,
    });
  } finally {
    d.close();
  }
}

const serialOf = (a: FleetAgent, kind: "client" | "serving") => certificateInfo(readFileSync(nodeLayout(a.root).current(kind), "utf8")).serial;

describe("e2e: kill -9 of the control plane during a campaign and each CA-rotation phase", function () {
  this.timeout(600_000);
  let server: ServerProcess;
  const agents: FleetAgent[] = [];
  const admin = (...args: string[]) => nodecert([...args, "--dir", server.dir, "--server", server.url]);
  const killAndRestart = async (when: string) => {
    await server.kill();
    const phase = (db(server, (v) => v.rotation?.phase) as string | undefined) ?? "none";
    console.log(`      kill -9 ${when} (rotation phase in the database: ${phase})`);
    await server.start();
    return phase;
  };

  before(async function () {
    requireTool(this, "sqlite3");
    // The operator drives the CA phases, so each can be killed in; campaigns use the defaults.
    server = await serverProcess({ config: { caRotation: { autoAdvance: false, maxInFlight: 2 } } });
    await server.start();
    for (let i = 0; i < 6; i++) agents.push(await startFleetAgent(server, `k-${i}`));
  });
  after(async () => {
    for (const a of agents) await a.agent.close().catch(() => undefined);
    await server?.stop();
  });

  const connected = () => agents.every((a) => a.agent.channel?.connected);

  it("a rotation campaign killed mid-way finishes after the restart, every node rotated, 0 failed", async () => {
    await until("all connected", connected, 60_000);
    const before = new Map(agents.map((a) => [a.name, serialOf(a, "client")]));
    const r = await admin("rotate", "--all", "--max-in-flight", "2", "--reason", "kill test");
    assert.equal(r.code, 0, r.stderr);
    const id = /started campaign (\w+)/.exec(r.stdout)![1];
    await until("two nodes done", () => ((db(server, (v) => v.campaign(id)) as { counts: Record<string, number> }).counts.done >= 2 ? true : undefined), 120_000);
    await killAndRestart("during the campaign");
    const done = await until("campaign finished", () => {
      const c = db(server, (v) => v.campaign(id)) as { state: string; counts: Record<string, number> };
      return c.state === "done" ? c : undefined;
    }, 240_000);
    assert.deepEqual(done.counts, { pending: 0, "in-flight": 0, done: 6, failed: 0 });
    for (const a of agents) {
      await until(`${a.name} installed its new certificate`, () => serialOf(a, "client") !== before.get(a.name), 60_000);
      assert.equal(db(server, (v) => v.certNode(serialOf(a, "client"))), a.name);
    }
  });

  it("a CA rotation killed in prepare, in switch (its re-issue campaign running) and in finish completes: 0 failed, every node on the new CA", async () => {
    await until("all connected", connected, 60_000);
    const started = await admin("ca", "rotate");
    assert.equal(started.code, 0, started.stderr);
    assert.match(started.stdout, /phase prepare/);
    assert.equal(await killAndRestart("in prepare"), "prepare");
    // The restarted server still offers old+new; every node installs it (offline ones on reconnect).
    const unblocked = async () => (/nothing blocks the next phase/.test((await admin("ca", "status")).stdout) ? true : undefined);
    await until("every node installed old+new", unblocked, 120_000);
    const sw = await admin("ca", "advance");
    assert.match(sw.stdout, /phase switch/, sw.stdout + sw.stderr);
    const rotation = db(server, (v) => v.rotation) as CaRotationState;
    assert.equal(rotation.phase, "switch");
    const campaignId = rotation.campaignId!;
    await until("re-issue under way", () => ((db(server, (v) => v.campaign(campaignId)) as { counts: Record<string, number> }).counts.done >= 1 ? true : undefined), 120_000);
    assert.equal(await killAndRestart("in switch, re-issue campaign running"), "switch");
    const reissued = await until("re-issue finished", () => {
      const c = db(server, (v) => v.campaign(campaignId)) as { state: string; counts: Record<string, number> };
      return c.state === "done" ? c : undefined;
    }, 240_000);
    assert.deepEqual(reissued.counts, { pending: 0, "in-flight": 0, done: 6, failed: 0 });
    await until("every node reports new-CA certificates", unblocked, 120_000);
    // Finish, killed while the advance request runs: wherever that caught it (switch, finishing or
    // done), the restarted server converges on done.
    const advance = admin("ca", "advance");
    await until("finish requested", () => (db(server, (v) => v.rotation?.phase) !== "switch" ? true : undefined), 30_000).catch(() => undefined);
    const caught = await killAndRestart("in finish");
    await advance;
    if ((db(server, (v) => v.rotation?.phase) as string) === "switch") assert.match((await admin("ca", "advance")).stdout, /phase done/);
    await until("rotation done", () => (db(server, (v) => v.rotation?.phase) === "done" ? true : undefined), 60_000);
    const newFp = (db(server, (v) => v.rotation) as CaRotationState).newFingerprint;
    console.log(`      the finish kill caught the rotation in phase ${caught}`);
    // The served trust is the new CA alone, and every node got it and holds new-CA certificates.
    const bundle = splitCertificates(server.trustBundle());
    assert.equal(bundle.length, 1);
    assert.equal(certificateInfo(bundle[0]).fingerprint256, newFp);
    for (const a of agents) {
      await until(`${a.name} has the new bundle`, () => splitCertificates(readFileSync(nodeLayout(a.root).caFile, "utf8")).length === 1, 60_000);
      for (const kind of ["client", "serving"] as const) assert.equal(db(server, (v) => v.issuerOf(serialOf(a, kind))), newFp, `${a.name} ${kind}`);
    }
    // And the nodes still work against it: a renewal over mTLS with the new certificates.
    const out = await agents[0].agent.renewer.renew(["client"], { force: true });
    assert.equal(out.error, undefined, out.error);
  });

  it("the database survived every kill: pragma integrity_check = ok", async () => {
    await server.stop();
    const r = await run("sqlite3", [path.join(server.dir, "nodecert.db"), "pragma integrity_check;"]);
    assert.equal(r.stdout.trim(), "ok", r.stderr);
    await server.start();
  });
});
