// The admin views the fleet dashboard reads (fleet, node detail, audit) and campaign cancel, on a
// real server with real agents, behind the same admin-certificate check as every admin route.
import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import path from "node:path";
import { requestJson } from "../../../src/platform/https-client.js";
import { certificateInfo } from "../../../src/pki/certificate-info.js";
import { nodeLayout } from "../../../src/agent/layout.js";
import { FakeClock, nodecert, startServer, type TestServer } from "../../support/helpers.js";
import { startFleetAgent, until, type FleetAgent } from "../../support/fleet.js";
import { joinRaw } from "../../support/node-client.js";
import type { AuditEventView, FleetView, NodeDetailView } from "../../../src/protocol/admin.js";
import type { CampaignStatus } from "../../../src/server/fleet/campaigns.js";

function adminTls(server: TestServer) {
  return { ca: server.authority.trustBundle, cert: readFileSync(path.join(server.dir, "admin", "admin.crt"), "utf8"), key: readFileSync(path.join(server.dir, "admin", "admin.key"), "utf8") };
}
const get = (server: TestServer, route: string) => requestJson(server.url + route, { tls: adminTls(server), maxBytes: 64 << 20 });
const post = (server: TestServer, route: string, body: unknown) => requestJson(server.url + route, { body, tls: adminTls(server) });

describe("server/admin views: fleet, node detail, audit, campaign cancel", function () {
  this.timeout(120_000);
  let server: TestServer;
  const agents: FleetAgent[] = [];
  before(async () => {
    server = await startServer();
    for (const n of ["view-a", "view-b"]) agents.push(await startFleetAgent(server, n));
    await until("both agents report their certificates", async () => {
      const f = (await get(server, "/v1/admin/fleet")).body as FleetView;
      return f.nodes.length === 2 && f.nodes.every((n) => n.connected && n.certificates.length === 2);
    });
  });
  after(async () => {
    for (const a of agents) await a.agent.close();
    await server?.close();
  });

  it("the fleet view gives each node's live certificates with the renewal window of each (70–90 % of its life)", async () => {
    const f = (await get(server, "/v1/admin/fleet")).body as FleetView;
    for (const a of agents) {
      const row = f.nodes.find((n) => n.name === a.name)!;
      for (const kind of ["client", "serving"] as const) {
        const onDisk = certificateInfo(readFileSync(nodeLayout(a.root).current(kind), "utf8"));
        const c = row.certificates.find((x) => x.kind === kind)!;
        assert.equal(c.serial, onDisk.serial, `${a.name} ${kind} serial is the one installed`);
        assert.equal(Date.parse(c.notAfter), onDisk.notAfter.getTime());
        assert.equal(Date.parse(c.notBefore!), onDisk.notBefore.getTime());
        const life = onDisk.notAfter.getTime() - onDisk.notBefore.getTime();
        assert.equal(Date.parse(c.renewFrom!), onDisk.notBefore.getTime() + life * 0.7);
        assert.equal(Date.parse(c.renewBy!), onDisk.notBefore.getTime() + life * 0.9);
      }
      assert.equal(row.nextRenewal, row.certificates.map((c) => c.renewFrom!).sort()[0]);
      assert.equal(row.failing, undefined, "fresh certificates are not failing");
    }
  });

  it("a denied join is in the audit view with its rule, and node, rule, type and time filters narrow it", async () => {
    const again = await joinRaw(server, "view-a", await server.createToken());
    assert.equal(again.status, 403);
    const denied = (await get(server, "/v1/admin/audit?rule=existing-node")).body as { events: AuditEventView[] };
    assert.equal(denied.events.length, 1, JSON.stringify(denied));
    assert.equal(denied.events[0].type, "join.denied");
    assert.equal(denied.events[0].node, "view-a");
    assert.match(denied.events[0].reason!, /already joined/);
    const byNode = ((await get(server, "/v1/admin/audit?node=view-b")).body as { events: AuditEventView[] }).events;
    assert.ok(byNode.length >= 1 && byNode.every((e) => e.node === "view-b"), JSON.stringify(byNode));
    const joins = ((await get(server, "/v1/admin/audit?type=join")).body as { events: AuditEventView[] }).events;
    assert.deepEqual([...new Set(joins.map((e) => e.type))].sort(), ["join.denied", "join.issued"]);
    const future = new Date(Date.now() + 3_600_000).toISOString();
    assert.deepEqual(((await get(server, `/v1/admin/audit?since=${encodeURIComponent(future)}`)).body as { events: unknown[] }).events, []);
    const t = denied.events[0].time;
    const exact = ((await get(server, `/v1/admin/audit?since=${encodeURIComponent(t)}&until=${encodeURIComponent(t)}&rule=existing-node`)).body as { events: unknown[] }).events;
    assert.equal(exact.length, 1);
  });

  it("bad audit queries are 400s naming the field", async () => {
    for (const [q, field] of [["since=yesterday", "since"], ["limit=0", "limit"], ["colour=red", "colour"]]) {
      const r = await get(server, `/v1/admin/audit?${q}`);
      assert.equal(r.status, 400, q);
      assert.match(JSON.stringify(r.body), new RegExp(field), q);
    }
  });

  it("node detail: issued certificates with subject, SANs and serials, facts, campaigns and history; 404 names what to do", async () => {
    const r = await get(server, "/v1/admin/nodes/view-b");
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const d = r.body as NodeDetailView;
    const serving = certificateInfo(readFileSync(nodeLayout(agents[1].root).current("serving"), "utf8"));
    const rec = d.issued.find((c) => c.serial === serving.serial)!;
    assert.equal(rec.kind, "serving");
    assert.equal(rec.subject, "CN=system:node:view-b, O=system:nodes");
    assert.deepEqual(d.servingSans.ip, ["127.0.0.1"], "the SANs its live serving certificate holds");
    assert.equal(rec.fingerprint256, serving.fingerprint256);
    assert.equal(d.facts.hostname !== undefined, true);
    assert.ok(d.history.some((e) => e.type === "join.issued"));
    assert.equal(d.connected, true);
    const missing = await get(server, "/v1/admin/nodes/nope");
    assert.equal(missing.status, 404);
    assert.match(JSON.stringify(missing.body), /nodecert nodes/);
  });

  it("a campaign is cancelled through the admin API and by 'nodecert rotations <id> --cancel'; cancelling twice is a 409, an unknown id a 404", async () => {
    // view-c joined but never opened the channel: its rotation stays pending, so the campaign runs.
    assert.equal((await joinRaw(server, "view-c", await server.createToken())).status, 200);
    const started = (await post(server, "/v1/admin/campaigns", { nodes: ["view-c"], maxInFlight: 1 })).body as CampaignStatus;
    assert.equal(started.campaign.state, "running");
    const cli = await nodecert(["rotations", started.campaign.id, "--cancel", "--dir", server.dir, "--server", server.url]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, new RegExp(`CAMPAIGN ${started.campaign.id}\\s+cancelled`));
    assert.equal((await server.store.getCampaign(started.campaign.id))?.state, "cancelled");
    assert.equal((await server.store.getCampaignNode(started.campaign.id, "view-c"))?.state, "pending", "no command went out");
    const twice = await post(server, `/v1/admin/campaigns/${started.campaign.id}/cancel`, {});
    assert.equal(twice.status, 409);
    assert.equal((twice.body as { error: string }).error, "campaign-not-running");
    assert.equal((await post(server, "/v1/admin/campaigns/nope/cancel", {})).status, 404);
    const noId = await nodecert(["rotations", "--cancel", "--dir", server.dir, "--server", server.url]);
    assert.notEqual(noId.code, 0);
    assert.match(noId.stderr, /--cancel needs the campaign id/);
  });
});

describe("server/admin views: failing renewals", function () {
  this.timeout(60_000);
  it("a node whose certificate is past its renewal window is marked failing, with which one and since when", async () => {
    const clock = new FakeClock(Date.now());
    const server = await startServer({ clock });
    try {
      const j = await joinRaw(server, "late-1", await server.createToken());
      assert.equal(j.status, 200);
      const cert = certificateInfo(j.credential!.pem);
      // What the agent's hello reports (recorded as the channel records it).
      await server.store.recordReport("late-1", { agentVersion: "t", fips: false, cryptoProvider: "default", addresses: ["127.0.0.1"], certificates: [{ kind: "client", serial: cert.serial, notAfter: cert.notAfter.toISOString(), keyAlgorithm: "ECDSA-P256" }] }, clock.now());
      const before = ((await get(server, "/v1/admin/fleet")).body as FleetView).nodes[0];
      assert.equal(before.failing, undefined);
      const life = cert.notAfter.getTime() - cert.notBefore.getTime();
      clock.t = cert.notBefore.getTime() + life * 0.95;
      const after = ((await get(server, "/v1/admin/fleet")).body as FleetView).nodes[0];
      assert.match(after.failing ?? "", new RegExp(`client certificate ${cert.serial} is past its renewal window`));
    } finally {
      await server.close();
    }
  });
});
