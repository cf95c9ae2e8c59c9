// The dashboard's local guard, on the shipped `bin/nodecert dashboard` against a real control
// plane: without the session that only the printed URL token gives, or from another Host or
// Origin, every request is refused; actions are POST-only with the session's CSRF token; and no
// secret (the URL token, the admin key, any PEM private key, the KEK) is in any page, asset or view.
import { strict as assert } from "node:assert";
import http from "node:http";
import { readFileSync } from "node:fs";
import path from "node:path";
import { nodecert, startServer, type TestServer } from "../../support/helpers.js";
import { startFleetAgent, type FleetAgent } from "../../support/fleet.js";
import { dashboardProcess, launchChromium, type DashboardProcess } from "../../support/dashboard.js";
import { nodeLayout } from "../../../src/agent/layout.js";
import { adminControlPlane } from "../../../src/cli/dashboard/control-plane.js";
import { startDashboard } from "../../../src/cli/dashboard/server.js";

interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(origin: string, p: string, o: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Res> {
  const u = new URL(p, origin);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: o.method ?? "GET", headers: { host: u.host, ...(o.headers ?? {}) } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => {
        body += d;
        // The event stream stays open: its first frame is enough.
        if (res.headers["content-type"]?.startsWith("text/event-stream")) res.destroy();
      });
      res.on("close", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on("error", (e) => reject(new Error(`${o.method ?? "GET"} ${p}: ${e.message}`)));
    req.end(o.body);
  });
}

/** Reads GETs and POSTs the page makes, one of each kind. */
const READS = ["/", "/index.html", "/assets/app.js", "/assets/app.css", "/api/fleet", "/api/campaigns", "/api/ca", "/api/audit?rule=existing-node", "/api/nodes/sec-1", "/api/events", "/api/campaigns/abc"];
const ACTIONS: [string, unknown][] = [["/api/campaigns", { all: true }], ["/api/campaigns/abc/cancel", {}], ["/api/ca/rotate", {}], ["/api/ca/advance", { force: true }], ["/api/nodes/sec-1/evict", {}]];

describe("cli/dashboard: the local guard (token, Host, Origin, CSRF) and no secret in any page", function () {
  this.timeout(120_000);
  let server: TestServer;
  let agent: FleetAgent;
  let dash: DashboardProcess;
  let cookie: string;
  let csrf: string;
  let token: string;
  before(async () => {
    server = await startServer();
    agent = await startFleetAgent(server, "sec-1");
    dash = await dashboardProcess(server);
    token = new URL(dash.loginUrl).searchParams.get("token")!;
    const login = await request(dash.origin, `/login?token=${token}`);
    assert.equal(login.status, 303);
    cookie = String(login.headers["set-cookie"]).split(";")[0];
    const page = await request(dash.origin, "/", { headers: { cookie } });
    csrf = /name="nodecert-csrf" content="([^"]+)"/.exec(page.body)![1];
  });
  after(async () => {
    await dash?.stop();
    await agent?.agent.close();
    await server?.close();
  });
  const nothingHappened = async () => {
    assert.deepEqual(await server.store.listCampaigns(), [], "no campaign started");
    assert.equal(await server.caRotation.state(), undefined, "no CA rotation started");
    assert.equal((await server.store.getNode("sec-1"))?.evictedAt, undefined, "not evicted");
  };

  it("the login exchanges the URL token for an HttpOnly, SameSite=Strict session cookie that is not the token, and sends the browser to / (no token in the address bar)", async () => {
    const r = await request(dash.origin, `/login?token=${token}`);
    assert.equal(r.status, 303);
    assert.equal(r.headers.location, "/");
    assert.equal(r.headers["referrer-policy"], "no-referrer");
    const set = String(r.headers["set-cookie"]);
    assert.match(set, /^nodecert-dashboard=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\/$/);
    assert.ok(!set.includes(token), "the cookie is a new secret, not the URL token");
  });

  it("without the session every request is refused (401), with a wrong token too; nothing happens", async () => {
    for (const p of READS) assert.equal((await request(dash.origin, p)).status, 401, `GET ${p}`);
    for (const p of ["/login", "/login?token=", `/login?token=${token.slice(0, -1)}x`, `/login?token=${token}x`]) {
      const r = await request(dash.origin, p);
      assert.equal(r.status, 401, p);
      assert.equal(r.headers["set-cookie"], undefined, p);
    }
    for (const [p, b] of ACTIONS) {
      const r = await request(dash.origin, p, { method: "POST", headers: { origin: dash.origin, "content-type": "application/json", "x-nodecert-csrf": csrf }, body: JSON.stringify(b) });
      assert.equal(r.status, 401, `POST ${p} without the cookie`);
    }
    const stale = await request(dash.origin, "/api/fleet", { headers: { cookie: "nodecert-dashboard=" + "A".repeat(43) } });
    assert.equal(stale.status, 401);
    await nothingHappened();
  });

  it("another Host (DNS rebinding) or Origin, or a cross-site fetch, is refused even with the session and the token", async () => {
    const port = new URL(dash.origin).port;
    for (const host of ["evil.example", `evil.example:${port}`, `127.0.0.1:${Number(port) + 1}`, `10.0.0.1:${port}`, `127.0.0.1.nip.io:${port}`]) {
      for (const p of ["/", "/api/fleet", `/login?token=${token}`]) {
        const r = await request(dash.origin, p, { headers: { host, cookie } });
        assert.equal(r.status, 421, `Host "${host}" ${p}`);
        assert.equal(r.headers["set-cookie"], undefined);
      }
      const post = await request(dash.origin, "/api/ca/rotate", { method: "POST", headers: { host, cookie, origin: dash.origin, "content-type": "application/json", "x-nodecert-csrf": csrf }, body: "{}" });
      assert.equal(post.status, 421, `POST with Host "${host}"`);
    }
    for (const origin of ["http://evil.example", `http://evil.example:${port}`, "null", `https://127.0.0.1:${port}`, `http://127.0.0.1:${Number(port) + 1}`]) {
      assert.equal((await request(dash.origin, "/api/fleet", { headers: { cookie, origin } })).status, 403, `GET from ${origin}`);
      const r = await request(dash.origin, "/api/ca/rotate", { method: "POST", headers: { cookie, origin, "content-type": "application/json", "x-nodecert-csrf": csrf }, body: "{}" });
      assert.equal(r.status, 403, `POST from ${origin}`);
    }
    for (const site of ["cross-site", "same-site"]) assert.equal((await request(dash.origin, "/api/fleet", { headers: { cookie, "sec-fetch-site": site } })).status, 403, site);
    await nothingHappened();
  });

  it("actions are POST only, JSON, from the page's origin, with this session's CSRF token", async () => {
    const good = { cookie, origin: dash.origin, "content-type": "application/json", "x-nodecert-csrf": csrf };
    for (const p of ["/api/ca/rotate", "/api/ca/advance", "/api/campaigns/abc/cancel", "/api/nodes/sec-1/evict"]) {
      const r = await request(dash.origin, p, { headers: { cookie } });
      assert.equal(r.status, 405, `GET ${p}`);
      assert.equal(r.headers.allow, "POST");
    }
    for (const method of ["PUT", "DELETE", "PATCH"]) assert.equal((await request(dash.origin, "/api/ca/rotate", { method, headers: good, body: "{}" })).status, 405, method);
    const without = (h: string) => Object.fromEntries(Object.entries(good).filter(([k]) => k !== h));
    assert.equal((await request(dash.origin, "/api/ca/rotate", { method: "POST", headers: without("x-nodecert-csrf"), body: "{}" })).status, 403, "no CSRF token");
    assert.equal((await request(dash.origin, "/api/ca/rotate", { method: "POST", headers: { ...good, "x-nodecert-csrf": csrf.slice(0, -2) + "xx" }, body: "{}" })).status, 403, "wrong CSRF token");
    assert.equal((await request(dash.origin, "/api/ca/rotate", { method: "POST", headers: { ...good, "x-nodecert-csrf": token }, body: "{}" })).status, 403, "the URL token is not the CSRF token");
    assert.equal((await request(dash.origin, "/api/ca/rotate", { method: "POST", headers: without("origin"), body: "{}" })).status, 403, "no Origin");
    // What an HTML form on another page could send (no preflight): refused before it reaches the control plane.
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]) {
      assert.equal((await request(dash.origin, "/api/ca/rotate", { method: "POST", headers: { ...good, "content-type": type }, body: "{}" })).status, 415, type);
    }
    assert.equal((await request(dash.origin, "/api/campaigns", { method: "POST", headers: good, body: "{not json" })).status, 400);
    assert.equal((await request(dash.origin, "/api/campaigns", { method: "POST", headers: good, body: "[]" })).status, 400);
    await nothingHappened();
    // Bad input reaches the control plane's own validation and comes back as its 4xx.
    const bad = await request(dash.origin, "/api/campaigns", { method: "POST", headers: good, body: JSON.stringify({ all: true, maxInFlight: 0 }) });
    assert.equal(bad.status, 400);
    assert.match(bad.body, /maxInFlight/);
    // With everything right, the action is one admin request.
    const ok = await request(dash.origin, "/api/campaigns", { method: "POST", headers: good, body: JSON.stringify({ nodes: ["sec-1"], maxInFlight: 1, which: ["client"] }) });
    assert.equal(ok.status, 200, ok.body);
    const id = (JSON.parse(ok.body) as { campaign: { id: string } }).campaign.id;
    assert.ok(await server.store.getCampaign(id), "the campaign exists on the control plane");
  });

  it("no page, asset or view holds the URL token, the admin key, the KEK or any PEM private key", async () => {
    const secrets = [
      ["URL token", token],
      ["admin key", readFileSync(path.join(server.dir, "admin", "admin.key"), "utf8").trim()],
      ["admin key body", readFileSync(path.join(server.dir, "admin", "admin.key"), "utf8").split("\n")[1]],
      ["node key body", readFileSync(nodeLayout(agent.root).current("client"), "utf8").split("-----BEGIN PRIVATE KEY-----\n")[1]?.split("\n")[0] ?? "(none)"],
      ["KEK (hex)", readFileSync(path.join(server.dir, "kek")).toString("hex")],
      ["KEK (base64)", readFileSync(path.join(server.dir, "kek")).toString("base64")],
    ];
    const bodies: [string, string][] = [];
    for (const p of READS) bodies.push([p, (await request(dash.origin, p, { headers: { cookie } })).body]);
    bodies.push(["login", JSON.stringify((await request(dash.origin, `/login?token=${token}`)).headers)]);
    for (const [p, body] of bodies) {
      assert.doesNotMatch(body, /PRIVATE KEY/, `${p} holds a PEM private key`);
      for (const [what, s] of secrets) assert.ok(s.length > 8 && !body.includes(s), `${p} holds the ${what}`);
    }
    assert.ok(bodies.find(([p]) => p === "/assets/app.js")![1].length > 10_000, "the script was read");
  });

  it("pages carry a CSP that allows only this origin's own script and style (no CDN), and cannot be framed", async () => {
    const r = await request(dash.origin, "/", { headers: { cookie } });
    assert.equal(r.status, 200);
    assert.match(String(r.headers["content-security-policy"]), /default-src 'none'; script-src 'self'; style-src 'self'.*frame-ancestors 'none'/);
    assert.equal(r.headers["x-frame-options"], "DENY");
    assert.doesNotMatch(r.body, /https?:\/\//, "no external URL in the page");
    const js = await request(dash.origin, "/assets/app.js", { headers: { cookie } });
    assert.doesNotMatch(js.body, /https?:\/\/(?!www\.w3\.org)[a-z0-9.-]+\//i, "the bundle fetches nothing from elsewhere");
  });

  it("the token is in no process's argv; --listen off loopback is refused", async () => {
    const argv = readFileSync(`/proc/${dash.child.pid}/cmdline`, "utf8");
    assert.ok(!argv.includes(token));
    const r = await nodecert(["dashboard", "--dir", server.dir, "--server", server.url, "--listen", "0.0.0.0:0"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /loopback only/);
  });

  it("the one-time URL that --open hands the browser logs in once only", async () => {
    const d = await startDashboard({ controlPlane: await adminControlPlane(server.dir, server.url), host: "127.0.0.1", port: 0 });
    try {
      const once = d.oneTimeLoginUrl();
      assert.equal((await request(d.origin, new URL(once).pathname + new URL(once).search)).status, 303);
      assert.equal((await request(d.origin, new URL(once).pathname + new URL(once).search)).status, 401, "burnt after one use");
    } finally {
      await d.close();
    }
  });

  it("in Chromium, a page on another local origin cannot read the dashboard or act through it", async function () {
    const browser = await launchChromium(this);
    const evil = http.createServer((_req, res) => res.end("<html><body>evil</body></html>"));
    await new Promise<void>((r) => evil.listen(0, "127.0.0.1", () => r()));
    try {
      const page = await browser.newPage();
      await page.goto(dash.loginUrl); // the operator is logged in, in this browser
      await page.waitForSelector("body[data-fleet-loaded]");
      await page.goto(`http://localhost:${(evil.address() as { port: number }).port}/`);
      const results = await page.evaluate(async (origin) => {
        const out: string[] = [];
        for (const [p, init] of [
          ["/api/fleet", { credentials: "include" }],
          ["/api/ca/rotate", { method: "POST", credentials: "include", mode: "no-cors", headers: { "content-type": "text/plain" }, body: "{}" }],
          ["/api/campaigns", { method: "POST", credentials: "include", headers: { "content-type": "application/json" }, body: JSON.stringify({ all: true }) }],
        ] as [string, RequestInit][]) {
          try {
            const r = await fetch(origin + p, init);
            out.push(`${p}: ${r.type} ${r.status} ${r.type === "opaque" ? "" : (await r.text()).slice(0, 40)}`);
          } catch (e) {
            out.push(`${p}: blocked (${(e as Error).message})`);
          }
        }
        return out;
      }, dash.origin);
      assert.ok(!results.some((r) => /nodes/.test(r)), `nothing read: ${results.join(" | ")}`);
      assert.equal(await server.caRotation.state(), undefined, "no CA rotation started");
      assert.equal((await server.store.listCampaigns()).filter((c) => c.state === "running" && c.which.length === 2).length, 0, "no campaign of every node");
    } finally {
      await browser.close();
      evil.close();
    }
  });
});

describe("cli/dashboard: live updates, --open, an unreachable control plane", function () {
  this.timeout(60_000);
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(async () => server?.close());

  /** A dashboard whose timers the test fires, on a real control plane whose reads are counted. */
  async function manual() {
    const real = await adminControlPlane(server.dir, server.url);
    const reads: string[] = [];
    const controlPlane = { ...real, getText: (r: string) => (reads.push(r), real.getText(r)) };
    const timers: (() => void)[] = [];
    const d = await startDashboard({ controlPlane, host: "127.0.0.1", port: 0, every: (_ms, fn) => (timers.push(fn), { cancel() {} }) });
    const login = await request(d.origin, new URL(d.loginUrl).pathname + new URL(d.loginUrl).search);
    const cookie = String(login.headers["set-cookie"]).split(";")[0];
    return { d, reads, cookie, tick: () => timers.forEach((t) => t()) };
  }

  /** Opens an event stream and collects its frames until closed. */
  function stream(origin: string, p: string, cookie: string) {
    const frames: string[] = [];
    const u = new URL(p, origin);
    const req = http.get({ host: u.hostname, port: u.port, path: u.pathname + u.search, headers: { host: u.host, cookie } }, (res) => res.on("data", (c) => frames.push(String(c))));
    return { frames, close: () => req.destroy() };
  }
  const settle = () => new Promise((r) => setImmediate(r));
  const until = async (what: string, ok: () => boolean) => {
    for (let i = 0; i < 400 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(ok(), what);
  };

  it("reads only the topics an open page shows, and announces a change once", async () => {
    const { d, reads, cookie, tick } = await manual();
    try {
      tick();
      await settle();
      assert.deepEqual(reads, [], "no page open: nothing is read");
      const s = stream(d.origin, "/api/events?topics=campaigns", cookie);
      await until("the stream opened", () => s.frames.join("").includes("event: hello"));
      tick();
      await until("campaigns read", () => reads.length === 1);
      assert.deepEqual(reads, ["/v1/admin/campaigns"], "only the campaigns page's topic");
      await until("announced", () => s.frames.join("").includes('"topic":"campaigns"'));
      tick();
      await until("read again", () => reads.length === 2);
      await settle();
      assert.equal(s.frames.join("").split('"topic":"campaigns"').length - 1, 1, "unchanged: not announced again");
      await server.store.createCampaign({ id: "c-live", createdAt: new Date(), state: "done", maxInFlight: 1, reason: "r", which: ["client"] }, []);
      tick();
      await until("the change announced", () => s.frames.join("").split('"topic":"campaigns"').length - 1 === 2);
      s.close();
    } finally {
      await d.close();
    }
  });

  it("--open hands the browser a one-time URL (not the printed one); the printed one still works", async () => {
    const dir = path.join(server.dir, "..");
    const seen = path.join(dir, "browser-argv");
    const browser = path.join(dir, "fake-browser.sh");
    (await import("node:fs")).writeFileSync(browser, `#!/bin/sh\nprintf '%s' "$1" > ${seen}\n`, { mode: 0o755 });
    const { spawn } = await import("node:child_process");
    const { BIN } = await import("../../support/helpers.js");
    const child = spawn(BIN, ["dashboard", "--dir", server.dir, "--server", server.url, "--listen", "127.0.0.1:0", "--open"], { env: { ...process.env, BROWSER: browser }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c) => (out += c));
    try {
      await until("the URL printed and the browser started", () => /^open: /m.test(out) && (() => { try { return readFileSync(seen, "utf8").length > 0; } catch { return false; } })());
      const printed = new URL(/^open: (\S+)$/m.exec(out)![1]);
      const opened = new URL(readFileSync(seen, "utf8"));
      assert.notEqual(opened.searchParams.get("token"), printed.searchParams.get("token"));
      assert.equal((await request(opened.origin, opened.pathname + opened.search)).status, 303);
      assert.equal((await request(opened.origin, opened.pathname + opened.search)).status, 401, "the browser's URL worked once");
      assert.equal((await request(printed.origin, printed.pathname + printed.search)).status, 303);
      assert.equal((await request(printed.origin, printed.pathname + printed.search)).status, 303, "the printed URL keeps working for this run");
    } finally {
      child.kill("SIGTERM");
    }
  });

  it("an unreachable control plane is a 502 naming it, not a crash", async () => {
    const real = await adminControlPlane(server.dir, "https://127.0.0.1:1");
    const d = await startDashboard({ controlPlane: real, host: "127.0.0.1", port: 0 });
    try {
      const login = await request(d.origin, new URL(d.loginUrl).pathname + new URL(d.loginUrl).search);
      const cookie = String(login.headers["set-cookie"]).split(";")[0];
      for (const p of ["/api/fleet", "/api/nodes/x", "/api/audit"]) {
        const r = await request(d.origin, p, { headers: { cookie } });
        assert.equal(r.status, 502, p);
        assert.match(JSON.parse(r.body).reason, /control plane at https:\/\/127\.0\.0\.1:1 did not answer/);
      }
      assert.equal((await request(d.origin, "/", { headers: { cookie } })).status, 200, "still serving");
    } finally {
      await d.close();
    }
  });

  it("without admin credentials the dashboard does not start, and says where it looked", async () => {
    const r = await nodecert(["dashboard", "--dir", path.join(server.dir, "nope"), "--listen", "127.0.0.1:0"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /cannot read admin credentials in .*nope\/admin .*--dir/);
  });
});
