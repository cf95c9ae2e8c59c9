// The dashboard in a real Chromium, against a real control plane with real agents, through the
// shipped `bin/nodecert dashboard`: the fleet lists the agents with their real expiries, a campaign
// started from the page completes while the page shows it live, a denied join is in the audit view
// with its rule, and the CA rotation's phase is shown and advanced from the page. Every page is
// screenshotted into the artifacts directory.
import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import path from "node:path";
import type { Browser, Page } from "puppeteer-core";
import { certificateInfo } from "../../src/pki/certificate-info.js";
import { nodeLayout } from "../../src/agent/layout.js";
import { FakeClock, startServer, type TestServer } from "../support/helpers.js";
import { startFleetAgent, until, type FleetAgent } from "../support/fleet.js";
import { joinRaw } from "../support/node-client.js";
import { artifactsDir, dashboardProcess, launchChromium, type DashboardProcess } from "../support/dashboard.js";

/** What the pages print for a time: UTC to the minute. */
const shown = (d: Date) => d.toISOString().slice(0, 16).replace("T", " ") + "Z";

describe("ui/dashboard in Chromium: real server, real agents, the shipped dashboard", function () {
  this.timeout(240_000);
  let server: TestServer;
  const agents: FleetAgent[] = [];
  let dash: DashboardProcess;
  let browser: Browser;
  let page: Page;
  const shots = artifactsDir();
  const shot = async (name: string) => {
    await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: false });
  };
  const disk = (a: FleetAgent, kind: "client" | "serving") => certificateInfo(readFileSync(nodeLayout(a.root).current(kind), "utf8"));

  before(async function () {
    browser = await launchChromium(this);
    server = await startServer({ overrides: { caRotation: { autoAdvance: false } } });
    for (const n of ["web-1", "web-2", "web-3"]) agents.push(await startFleetAgent(server, n));
    await until("the agents report their certificates", async () => (await server.store.listNodes()).every((n) => n.reported?.certificates.length === 2) && (await server.store.listNodes()).length === 3);
    dash = await dashboardProcess(server);
    page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on("pageerror", (e) => pageErrors.push(String(e)));
    (page as Page & { pageErrors?: string[] }).pageErrors = pageErrors;
    await page.goto(dash.loginUrl, { waitUntil: "load" });
  });
  after(async () => {
    await browser?.close();
    await dash?.stop();
    for (const a of agents) await a.agent.close();
    await server?.close();
  });

  it("the login URL sets the session and leaves the token out of the address bar", async () => {
    assert.equal(new URL(page.url()).search, "", "redirected to / without ?token");
    assert.equal(new URL(page.url()).pathname, "/");
  });

  it("Fleet lists every agent with the expiries of the certificates installed on it", async () => {
    await page.waitForSelector('body[data-fleet-loaded="3"]');
    for (const a of agents) {
      const cells = await page.$$eval(`[data-node="${a.name}"] [data-col]`, (els) => Object.fromEntries(els.map((e) => [(e as HTMLElement).dataset.col, e.textContent])));
      assert.equal(cells.client, shown(disk(a, "client").notAfter), `${a.name} client expiry`);
      assert.equal(cells.serving, shown(disk(a, "serving").notAfter), `${a.name} serving expiry`);
      assert.equal(cells.connected, "connected");
      assert.equal(cells.key, "ECDSA-P256");
    }
    // Filter and sort.
    await page.type('[data-test="fleet-filter"]', "web-2");
    await page.waitForFunction(() => document.querySelector('[data-test="fleet-count"]')?.textContent === "1 of 3 nodes");
    assert.deepEqual(await page.$$eval(".vbody .row", (rows) => rows.map((r) => (r as HTMLElement).dataset.node)), ["web-2"]);
    await page.$eval('[data-test="fleet-filter"]', (e) => ((e as HTMLInputElement).value = ""));
    await page.type('[data-test="fleet-filter"]', " ");
    await page.waitForFunction(() => document.querySelector('[data-test="fleet-count"]')?.textContent === "3 of 3 nodes");
    await page.click('.head [data-col="name"]'); // already sorted by name: now descending
    await page.waitForFunction(() => (document.querySelector(".vbody .row") as HTMLElement | null)?.dataset.node === "web-3");
    await shot("fleet");
  });

  it("Expiry timeline draws the fleet's expiries with uPlot and counts the danger zone", async () => {
    await page.goto(`${dash.origin}/#/timeline`);
    await page.waitForSelector('body[data-timeline-loaded="6"]');
    assert.ok(await page.$('[data-test="timeline-chart"] canvas'), "uPlot drew a canvas");
    assert.match((await page.$eval('[data-test="danger-count"]', (e) => e.textContent)) ?? "", /^0 certificates/);
    assert.match((await page.$eval('[data-test="failing-count"]', (e) => e.textContent)) ?? "", /^0 nodes/);
    await shot("timeline");
  });

  it("a denied join appears in the audit view with its rule", async () => {
    const denied = await joinRaw(server, "web-1", await server.createToken());
    assert.equal(denied.status, 403);
    await page.goto(`${dash.origin}/#/audit`);
    await page.waitForSelector("body[data-audit-loaded]");
    await page.type('[data-test="audit-rule"]', "existing-node");
    await page.click('[data-test="audit-apply"]');
    await page.waitForFunction(() => location.hash.includes("rule=existing-node") && document.querySelectorAll('[data-test="audit-table"] tbody tr').length === 1);
    const row = await page.$eval('[data-test="audit-table"] tbody tr', (tr) => ({ type: (tr as HTMLElement).dataset.type, rule: (tr as HTMLElement).dataset.rule, text: tr.textContent, denied: tr.classList.contains("denied") }));
    assert.equal(row.type, "join.denied");
    assert.equal(row.rule, "existing-node");
    assert.ok(row.denied);
    assert.match(row.text ?? "", /web-1.*already joined/);
    await shot("audit");
  });

  it("a campaign started from the page completes, and the page shows it live without a reload", async () => {
    const before = new Map(agents.map((a) => [a.name, disk(a, "client").serial]));
    await page.goto(`${dash.origin}/#/campaigns`);
    await page.waitForSelector("body[data-campaigns-loaded]");
    // Marks this document: a reload would lose it.
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));
    await page.evaluate(() => {
      const seen: string[] = [];
      (window as unknown as { seen: string[] }).seen = seen;
      new MutationObserver(() => {
        const s = document.querySelector("[data-campaign]")?.getAttribute("data-state");
        if (s && seen[seen.length - 1] !== s) seen.push(s);
      }).observe(document.querySelector('[data-test="campaign-list"]')!, { subtree: true, childList: true, attributes: true });
    });
    await page.$eval('[data-test="campaign-max"]', (e) => ((e as HTMLInputElement).value = "1"));
    await page.click('[data-test="campaign-start"]');
    await page.waitForSelector("dialog#confirm[open]");
    assert.match((await page.$eval("#confirm-text", (e) => e.textContent)) ?? "", /every node that is not evicted, 1 at a time/);
    await page.click("#confirm-ok");
    await page.waitForSelector('[data-test="campaign-started"]');
    await page.waitForSelector('[data-campaign][data-state="done"]', { timeout: 120_000 });
    assert.equal(await page.$eval('[data-campaign] [data-count="done"]', (e) => e.textContent), "3 done");
    assert.equal(await page.evaluate(() => (window as unknown as { marker: number }).marker), 42, "same document: updated live");
    const seen = await page.evaluate(() => (window as unknown as { seen: string[] }).seen);
    assert.deepEqual(seen, ["running", "done"], "the page showed the campaign running, then done");
    for (const a of agents) assert.notEqual(disk(a, "client").serial, before.get(a.name), `${a.name} rotated`);
    await shot("campaigns");
  });

  it("Node detail shows the node's certificates with serials, subject, SANs and history", async () => {
    const a = agents[0];
    await page.goto(`${dash.origin}/#/fleet`);
    await page.waitForSelector('body[data-fleet-loaded="3"]');
    await page.click(`[data-node="${a.name}"] [data-col="name"] a`);
    await page.waitForSelector(`body[data-node-loaded="${a.name}"]`);
    const certs = (await page.$eval('[data-test="node-certs"]', (e) => e.textContent)) ?? "";
    assert.ok(certs.includes(disk(a, "client").serial), "the installed client serial");
    assert.ok(certs.includes(disk(a, "serving").serial), "the installed serving serial");
    assert.ok(certs.includes(`CN=system:node:${a.name}, O=system:nodes`), "subject");
    assert.ok(certs.includes("127.0.0.1"), "serving SANs");
    const issued = (await page.$eval('[data-test="node-issued"]', (e) => e.textContent)) ?? "";
    assert.ok(issued.includes(disk(a, "client").serial) && issued.length > certs.length / 2, "the issuance history");
    const history = (await page.$eval('[data-test="node-history"]', (e) => e.textContent)) ?? "";
    assert.match(history, /join\.issued/);
    assert.match(history, /join\.denied.*existing-node/);
    await shot("node");
  });

  it("a running campaign is cancelled from the page, and a node evicted from its page, each after a confirmation", async () => {
    // web-off joined but never opens the channel, so its rotation stays pending.
    assert.equal((await joinRaw(server, "web-off", await server.createToken())).status, 200);
    await page.goto(`${dash.origin}/#/campaigns`);
    await page.waitForSelector("body[data-campaigns-loaded]");
    await page.click('[data-test="scope-nodes"]');
    await page.type('[data-test="campaign-nodes"]', "web-off");
    await page.click('[data-test="campaign-start"]');
    await page.waitForSelector("dialog#confirm[open]");
    assert.match((await page.$eval("#confirm-text", (e) => e.textContent)) ?? "", /of 1 node,/);
    await page.click("#confirm-ok");
    await page.waitForSelector('[data-campaign][data-state="running"] [data-test="campaign-cancel"]');
    const id = await page.$eval('[data-campaign][data-state="running"]', (e) => (e as HTMLElement).dataset.campaign!);
    await page.click(`[data-campaign="${id}"] [data-test="campaign-cancel"]`);
    await page.waitForSelector("dialog#confirm[open]");
    await page.click("#confirm-cancel"); // changing one's mind does nothing
    await page.waitForSelector("dialog#confirm:not([open])");
    assert.equal((await server.store.getCampaign(id))?.state, "running");
    await page.click(`[data-campaign="${id}"] [data-test="campaign-cancel"]`);
    await page.waitForSelector("dialog#confirm[open]");
    await page.click("#confirm-ok");
    await page.waitForSelector(`[data-campaign="${id}"][data-state="cancelled"]`);
    assert.equal((await server.store.getCampaign(id))?.state, "cancelled");
    await page.goto(`${dash.origin}/#/node/web-off`);
    await page.waitForSelector('body[data-node-loaded="web-off"]');
    await page.click('[data-test="node-evict"]');
    await page.waitForSelector("dialog#confirm[open]");
    await page.click("#confirm-ok");
    await until("web-off evicted", async () => (await server.store.getNode("web-off"))?.evictedAt);
    await page.waitForFunction(() => !document.querySelector('[data-test="node-evict"]'));
  });

  it("CA rotation: the phase is shown, started and advanced from the page", async () => {
    await page.goto(`${dash.origin}/#/ca`);
    await page.waitForSelector("body[data-ca-loaded]");
    assert.equal(await page.$eval('[data-test="ca-phase"]', (e) => e.textContent), "none");
    await page.click('[data-test="ca-start"]');
    await page.waitForSelector("dialog#confirm[open]");
    await page.click("#confirm-ok");
    await page.waitForSelector('[data-test="ca-phase"][data-phase="prepare"]');
    assert.equal((await server.caRotation.state())?.phase, "prepare");
    await shot("ca-prepare");
    // The agents install the old+new bundle; the page learns it live and enables Advance.
    await page.waitForSelector('[data-test="ca-advance"]:not([disabled])', { timeout: 60_000 });
    assert.equal(await page.$eval('[data-test="ca-blocker-count"]', (e) => e.textContent), "0");
    await page.click('[data-test="ca-advance"]');
    await page.waitForSelector("dialog#confirm[open]");
    assert.match((await page.$eval("#confirm-text", (e) => e.textContent)) ?? "", /from prepare to switch/);
    await page.click("#confirm-ok");
    await page.waitForSelector('[data-test="ca-phase"][data-phase="switch"]');
    assert.equal((await server.caRotation.state())?.phase, "switch");
    await shot("ca");
    assert.deepEqual((page as Page & { pageErrors?: string[] }).pageErrors, [], "no script error on any page");
  });
});

describe("ui/dashboard in Chromium: failing renewals and the danger zone", function () {
  this.timeout(120_000);
  it("a node past its renewal window and 12 h from expiry is red on Fleet and listed as failing and in the danger zone on the timeline", async function () {
    const browser = await launchChromium(this);
    const clock = new FakeClock(Date.now());
    const server = await startServer({ clock });
    let dash: DashboardProcess | undefined;
    try {
      // What each agent's hello reports, recorded as the channel records it.
      const joinAndReport = async (name: string) => {
        const j = await joinRaw(server, name, await server.createToken());
        assert.equal(j.status, 200);
        const c = certificateInfo(j.credential!.pem);
        await server.store.recordReport(name, { agentVersion: "t", fips: false, cryptoProvider: "default", addresses: ["127.0.0.1"], certificates: [{ kind: "client", serial: c.serial, notAfter: c.notAfter.toISOString(), keyAlgorithm: "ECDSA-P256" }] }, clock.now());
        return c;
      };
      // late-1 and late-2 never renew: the clock moves to 12 h before their expiry. fresh-1 joins then.
      const late = await joinAndReport("late-1");
      await joinAndReport("late-2");
      clock.t = late.notAfter.getTime() - 12 * 3_600_000;
      await joinAndReport("fresh-1");
      dash = await dashboardProcess(server, ["--refresh", "1s"]);
      const page = await browser.newPage();
      await page.goto(dash.loginUrl);
      await page.waitForSelector('body[data-fleet-loaded="3"]');
      const state = async (n: string) => page.$eval(`[data-node="${n}"]`, (r) => ({ failing: r.classList.contains("failing"), state: r.querySelector('[data-col="state"]')!.textContent }));
      assert.deepEqual(await state("late-1"), { failing: true, state: "failing" });
      assert.deepEqual(await state("fresh-1"), { failing: false, state: "active" });
      await page.goto(`${dash.origin}/#/timeline`);
      await page.waitForSelector('body[data-timeline-loaded="3"]');
      assert.match((await page.$eval('[data-test="failing-count"]', (e) => e.textContent)) ?? "", /^2 nodes with failing renewals/);
      assert.match((await page.$eval('[data-test="danger-count"]', (e) => e.textContent)) ?? "", /^2 certificates expired or expiring within 24 h/);
      const rows = await page.$$eval('[data-test="failing-table"] tbody tr', (trs) => trs.map((t) => t.textContent ?? ""));
      assert.equal(rows.length, 2);
      assert.ok(rows.some((r) => /late-1.*past its renewal window/.test(r)), rows.join(" | "));
      assert.ok(!rows.some((r) => r.includes("fresh-1")));
      await page.screenshot({ path: path.join(artifactsDir(), "timeline-failing.png") });
    } finally {
      await browser.close();
      await dash?.stop();
      await server.close();
    }
  });
});
