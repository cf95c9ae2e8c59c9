// The shipped monitoring (deploy/): Prometheus rules checked and unit-tested by promtool, the
// Grafana dashboard validated by a JSON schema, and every PromQL expression and metric name in
// both checked against promtool's parser and what nodecert actually exposes.
import { strict as assert } from "node:assert";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Ajv } from "ajv";
import YAML from "yaml";
import { ROOT, requireTool, run, tempDir } from "../support/helpers.js";

const RULES = path.join(ROOT, "deploy/prometheus/nodecert-rules.yaml");
const RULE_TESTS = path.join(ROOT, "deploy/prometheus/nodecert-rules.test.yaml");
const DASHBOARD = path.join(ROOT, "deploy/grafana/nodecert-dashboard.json");
const SCHEMA = path.join(ROOT, "deploy/grafana/dashboard.schema.json");

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  targets?: { expr: string }[];
}

/** Every metric name nodecert's sources register with prom-client (histograms add their suffixes). */
function exposedNames(): Set<string> {
  const names = new Set<string>();
  for (const f of ["src/agent/metrics-registry.ts", "src/agent/metrics-kubelet.ts", "src/server/metrics/server-metrics.ts", "src/agent/kubelet-apply-metrics.ts"]) {
    let text: string;
    try {
      text = readFileSync(path.join(ROOT, f), "utf8");
    } catch {
      continue;
    }
    for (const m of text.matchAll(/name: "([a-z_:]+)"/g)) names.add(m[1]);
    for (const m of text.matchAll(/new Histogram\(\{\s*name: "([a-z_:]+)"/g)) for (const s of ["_bucket", "_sum", "_count"]) names.add(m[1] + s);
  }
  return names;
}

const PROMQL_WORDS = new Set(["by", "on", "and", "or", "unless", "without", "group_left", "group_right", "offset", "bool", "ignoring", "time", "vector", "le"]);
/** Metric names an expression selects: identifiers followed by a selector, range or nothing, that are not functions, labels or keywords. */
function metricNames(expr: string): string[] {
  const noStrings = expr.replace(/"[^"]*"/g, '""');
  const out = new Set<string>();
  for (const m of noStrings.matchAll(/\b([a-z_][a-z0-9_:]*)\b(?!\s*\()/g)) {
    const w = m[1];
    if (PROMQL_WORDS.has(w) || !w.includes("_") || /^(job|instance|kind|result|state|campaign|phase|node|rule|code|operation|subject|role|outcome|fingerprint)$/.test(w)) continue;
    // label names inside by (...) / on (...) lists
    const before = noStrings.slice(0, m.index);
    if (/\b(by|on|without|ignoring|group_left|group_right)\s*\([^)]*$/.test(before)) continue;
    if (/\{[^}]*$/.test(before)) continue;
    out.add(w);
  }
  return [...out];
}

describe("deploy: Prometheus rules and Grafana dashboard", function () {
  this.timeout(60_000);

  it("promtool check rules accepts nodecert-rules.yaml and its unit tests pass (every alert fires and stays quiet at least once)", async function () {
    requireTool(this, "promtool");
    const check = await run("promtool", ["check", "rules", RULES]);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    const t = await run("promtool", ["test", "rules", RULE_TESTS]);
    assert.equal(t.code, 0, t.stdout + t.stderr);
    assert.match(t.stdout + t.stderr, /SUCCESS/);
    const rules = YAML.parse(readFileSync(RULES, "utf8")) as { groups: { rules: { alert: string }[] }[] };
    const tests = YAML.parse(readFileSync(RULE_TESTS, "utf8")) as { tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[] };
    const cases = tests.tests.flatMap((x) => x.alert_rule_test);
    for (const alert of rules.groups.flatMap((g) => g.rules.map((r) => r.alert))) {
      assert.ok(cases.some((c) => c.alertname === alert && c.exp_alerts.length > 0), `${alert} is never shown firing`);
      assert.ok(cases.some((c) => c.alertname === alert && c.exp_alerts.length === 0), `${alert} is never shown quiet`);
    }
  });

  it("the unit tests catch a broken rule: a danger-window alert that compares the wrong way fails them", async function () {
    requireTool(this, "promtool");
    const dir = tempDir();
    const broken = readFileSync(RULES, "utf8").replace("nodecert_certificate_ttl_seconds\n            < on (job, instance)", "nodecert_certificate_ttl_seconds\n            > on (job, instance)");
    assert.notEqual(broken, readFileSync(RULES, "utf8"), "the mutation applied");
    writeFileSync(path.join(dir, "nodecert-rules.yaml"), broken);
    copyFileSync(RULE_TESTS, path.join(dir, "nodecert-rules.test.yaml"));
    const t = await run("promtool", ["test", "rules", path.join(dir, "nodecert-rules.test.yaml")]);
    assert.notEqual(t.code, 0);
    assert.match(t.stdout + t.stderr, /FAILED[\s\S]*NodecertCertificateExpiringInDangerWindow/);
  });

  it("the Grafana dashboard validates against the dashboard schema; a panel without gridPos or a target without expr does not", () => {
    const ajv = new Ajv({ allErrors: true });
    const validate = ajv.compile(JSON.parse(readFileSync(SCHEMA, "utf8")));
    const dash = JSON.parse(readFileSync(DASHBOARD, "utf8")) as { panels: Panel[] };
    assert.ok(validate(dash), ajv.errorsText(validate.errors));
    const noGrid = structuredClone(dash) as { panels: Partial<Panel>[] };
    delete noGrid.panels[1].gridPos;
    assert.equal(validate(noGrid), false);
    assert.match(ajv.errorsText(validate.errors), /gridPos/);
    const noExpr = structuredClone(dash) as { panels: { targets?: { expr?: string }[] }[] };
    delete noExpr.panels[1].targets![0].expr;
    assert.equal(validate(noExpr), false);
    // What a schema cannot say: ids unique, panels inside the 24-column grid and not overlapping.
    const ids = dash.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, "panel ids are unique");
    const cells = new Set<string>();
    for (const p of dash.panels) {
      assert.ok(p.gridPos.x + p.gridPos.w <= 24, `${p.title} fits the grid`);
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++)
        for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
          assert.ok(!cells.has(`${x},${y}`), `${p.title} overlaps another panel at ${x},${y}`);
          cells.add(`${x},${y}`);
        }
    }
  });

  it("every dashboard query parses with promtool and every metric in the dashboard and the rules is one nodecert exposes", async function () {
    requireTool(this, "promtool");
    const dash = JSON.parse(readFileSync(DASHBOARD, "utf8")) as { panels: Panel[] };
    const exprs = dash.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    // Grafana's variables, as Grafana substitutes them before the query reaches Prometheus.
    const concrete = exprs.map((e) => e.replace(/\$__rate_interval/g, "5m").replace(/\$[a-z_]+/g, ".*"));
    const asRules = { groups: [{ name: "dashboard", rules: concrete.map((expr, i) => ({ record: `dashboard:query_${i}`, expr })) }] };
    const f = path.join(tempDir(), "dashboard-queries.yaml");
    writeFileSync(f, YAML.stringify(asRules));
    const check = await run("promtool", ["check", "rules", f]);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    const rules = YAML.parse(readFileSync(RULES, "utf8")) as { groups: { rules: { expr: string }[] }[] };
    const exposed = exposedNames();
    const used = new Set([...concrete, ...rules.groups.flatMap((g) => g.rules.map((r) => r.expr))].flatMap(metricNames));
    assert.ok(used.has("kubelet_certificate_manager_client_ttl_seconds") && used.has("nodecert_agents_connected"), `found: ${[...used].join(", ")}`);
    assert.deepEqual([...used].filter((n) => !exposed.has(n)), [], "metrics no nodecert process exposes");
  });
});
