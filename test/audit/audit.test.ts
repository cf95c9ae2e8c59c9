// `nodecert audit` on a root laid out as a kubeadm node (a real join by a real server, kubeadm's
// kubelet drop-in and config.yaml), each check made to pass and to fail; json checked by schema.
import { strict as assert } from "node:assert";
import { chmodSync, chownSync, copyFileSync, cpSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Ajv } from "ajv";
import addFormats from "ajv-formats";
import YAML from "yaml";
import { ROOT, nodecert, requireTool, run, startServer, tempDir, type TestServer } from "../support/helpers.js";
import type { AuditReport } from "../../src/audit/report.js";

const FIX = path.join(ROOT, "test/fixtures/kubeadm");
const SERVING = "/var/lib/kubelet/pki/kubelet-server-current.pem";

describe("audit: nodecert audit on a kubeadm-shaped node", function () {
  this.timeout(120_000);
  let server: TestServer;
  let good: string;
  const ajv = new Ajv({ allErrors: true });
  (addFormats as unknown as (a: Ajv) => void)(ajv);
  const validate = ajv.compile(JSON.parse(readFileSync(path.join(ROOT, "docs/audit-report.schema.json"), "utf8")));

  before(async function () {
    if (process.getuid?.() !== 0) {
      if (process.env.CI === "true") throw new Error("the audit tests need root (ownership checks)");
      console.log("      skipped: the audit tests need root to set file owners");
      this.skip();
    }
    server = await startServer();
    good = path.join(tempDir(), "node");
    const j = await nodecert(["join", "--server", server.url, "--token", await server.createToken(), "--ca-cert-hash", server.pin, "--root", good, "--node-name", "audit-1", "--address", "127.0.0.1", "--fips", "off"]);
    assert.equal(j.code, 0, j.stderr);
    mkdirSync(path.join(good, "etc/systemd/system/kubelet.service.d"), { recursive: true });
    copyFileSync(path.join(FIX, "10-kubeadm.conf"), path.join(good, "etc/systemd/system/kubelet.service.d/10-kubeadm.conf"));
    chmodSync(path.join(good, "etc/systemd/system/kubelet.service.d/10-kubeadm.conf"), 0o600);
    // kubeadm's config.yaml as nodecert needs it (what 'nodecert kubelet configure --write' does), TLS 1.3 only.
    const cfg = YAML.parse(readFileSync(path.join(FIX, "config.yaml"), "utf8")) as Record<string, unknown>;
    writeKubeletConfig(good, { ...cfg, tlsCertFile: SERVING, tlsPrivateKeyFile: SERVING, rotateCertificates: false, serverTLSBootstrap: false, tlsMinVersion: "VersionTLS13" });
    chmodSync(path.join(good, "etc/kubernetes/pki/ca.crt"), 0o644);
    mkdirSync(path.join(good, "etc/nodecert"), { recursive: true });
    writeFileSync(path.join(good, "etc/nodecert/agent.yaml"), YAML.stringify({ server: server.url, caCertHash: server.pin, addresses: { only: ["127.0.0.1"] } }), { mode: 0o600 });
  });
  after(async () => server?.close());

  function writeKubeletConfig(root: string, doc: Record<string, unknown>): void {
    mkdirSync(path.join(root, "var/lib/kubelet"), { recursive: true });
    writeFileSync(path.join(root, "var/lib/kubelet/config.yaml"), YAML.stringify(doc), { mode: 0o600 });
    chmodSync(path.join(root, "var/lib/kubelet/config.yaml"), 0o600);
  }
  const kubeletConfig = (root: string) => YAML.parse(readFileSync(path.join(root, "var/lib/kubelet/config.yaml"), "utf8")) as Record<string, unknown>;
  const copy = () => {
    const r = path.join(tempDir(), "copy");
    cpSync(good, r, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
    return r;
  };
  const audit = async (root: string, extra: string[] = []) => {
    const r = await nodecert(["audit", "--root", root, "-o", "json", ...extra]);
    assert.ok(r.code !== 2, `the audit could not run: ${r.stderr}`);
    const report = JSON.parse(r.stdout) as AuditReport;
    assert.ok(validate(report), ajv.errorsText(validate.errors));
    return { code: r.code, report, status: (id: string) => report.checks.find((c) => c.id === id)!.status, check: (id: string) => report.checks.find((c) => c.id === id)! };
  };

  it("every CIS and nodecert check passes on a well-set node; exit 0; the json matches the schema", async () => {
    const a = await audit(good);
    const notPass = a.report.checks.filter((c) => c.status !== "PASS");
    assert.deepEqual(notPass.map((c) => `${c.id} ${c.status}: ${c.detail}`), []);
    assert.equal(a.code, 0);
    assert.deepEqual(a.report.checks.map((c) => c.id), ["4.1.1", "4.1.2", "4.1.5", "4.1.6", "4.1.7", "4.1.8", "4.1.9", "4.1.10", "4.2.3", "4.2.9", "4.2.10", "4.2.11", "4.2.12", "NC.1.1", "NC.1.2", "NC.1.3", "NC.1.4", "NC.2.1", "NC.2.2", "NC.2.3", "NC.2.4"]);
    assert.equal(a.check("4.1.5").text, "Ensure that the --kubeconfig kubelet.conf file permissions are set to 600 or more restrictive (Automated)", "kube-bench's wording");
    assert.match(a.check("4.2.10").detail, /rotated by nodecert/);
    const table = await nodecert(["audit", "--root", good]);
    assert.equal(table.code, 0);
    assert.match(table.stdout, /^\[PASS\] 4\.2\.9 Ensure that the --tls-cert-file and --tls-private-key-file arguments are set as appropriate \(Manual\)$/m);
    assert.match(table.stdout, /^21 checks PASS$/m);
  });

  const chown = (root: string, p: string) => chownSync(path.join(root, p), 1000, 1000);
  const chmod = (root: string, p: string, m: number) => chmodSync(realpathSync(path.join(root, p)), m);
  const UNIT = "etc/systemd/system/kubelet.service.d/10-kubeadm.conf";
  /** id, what is changed, the change, and audit arguments after it. */
  const mutations: [string, string, (root: string) => void | Promise<void>, string[]?][] = [
    ["4.1.1", "the kubelet drop-in is 644", (r) => chmod(r, UNIT, 0o644)],
    ["4.1.2", "the kubelet drop-in is owned by 1000:1000", (r) => chown(r, UNIT)],
    ["4.1.5", "kubelet.conf is 644", (r) => chmod(r, "etc/kubernetes/kubelet.conf", 0o644)],
    ["4.1.6", "kubelet.conf is owned by 1000:1000", (r) => chown(r, "etc/kubernetes/kubelet.conf")],
    ["4.1.7", "the client CA is 666", (r) => chmod(r, "etc/kubernetes/pki/ca.crt", 0o666)],
    ["4.1.8", "the client CA is owned by 1000:1000", (r) => chown(r, "etc/kubernetes/pki/ca.crt")],
    ["4.1.9", "config.yaml is 644", (r) => chmod(r, "var/lib/kubelet/config.yaml", 0o644)],
    ["4.1.10", "config.yaml is owned by 1000:1000", (r) => chown(r, "var/lib/kubelet/config.yaml")],
    ["4.2.3", "clientCAFile is not set", (r) => writeKubeletConfig(r, { ...kubeletConfig(r), authentication: { x509: {} } })],
    ["4.2.9", "tlsCertFile is not set", (r) => writeKubeletConfig(r, { ...kubeletConfig(r), tlsCertFile: undefined })],
    ["4.2.10", "rotateCertificates: false and nodecert does not manage the node", (r) => rmSync(path.join(r, "var/lib/nodecert/state.json"))],
    ["4.2.11", "RotateKubeletServerCertificate=false, serverTLSBootstrap, no nodecert", (r) => {
      rmSync(path.join(r, "var/lib/nodecert/state.json"));
      writeKubeletConfig(r, { ...kubeletConfig(r), serverTLSBootstrap: true, featureGates: { RotateKubeletServerCertificate: false } });
    }],
    ["4.2.12", "a CBC suite in tlsCipherSuites", (r) => writeKubeletConfig(r, { ...kubeletConfig(r), tlsCipherSuites: ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_WITH_AES_128_CBC_SHA"] })],
    ["NC.1.1", "a key file is 644", (r) => chmod(r, SERVING.slice(1), 0o644)],
    ["NC.1.2", "the state directory is 755", (r) => chmod(r, "var/lib/nodecert", 0o755)],
    ["NC.1.3", "agent.yaml is 644", (r) => chmod(r, "etc/nodecert/agent.yaml", 0o644)],
    ["NC.1.4", "a key file is owned by 1000:1000", (r) => chownSync(realpathSync(path.join(r, SERVING)), 1000, 1000)],
    ["NC.2.1", "the danger window is longer than the client certificate's life", (r) => writeFileSync(path.join(r, "etc/nodecert/agent.yaml"), YAML.stringify({ ...YAML.parse(readFileSync(path.join(r, "etc/nodecert/agent.yaml"), "utf8")), dangerWindow: "400d" }), { mode: 0o600 })],
    ["NC.2.2", "the danger window is longer than the serving certificate's life", (r) => writeFileSync(path.join(r, "etc/nodecert/agent.yaml"), YAML.stringify({ ...YAML.parse(readFileSync(path.join(r, "etc/nodecert/agent.yaml"), "utf8")), dangerWindow: "400d" }), { mode: 0o600 })],
    ["NC.2.3", "the serving certificate has an RSA-1024 key", async (r) => {
      const dir = tempDir();
      const gen = await run("openssl", ["req", "-x509", "-newkey", "rsa:1024", "-nodes", "-keyout", path.join(dir, "k.pem"), "-out", path.join(dir, "c.pem"), "-days", "30", "-subj", "/O=system:nodes/CN=system:node:audit-1", "-addext", "subjectAltName=IP:127.0.0.1"]);
      assert.equal(gen.code, 0, gen.stderr);
      writeFileSync(realpathSync(path.join(r, SERVING)), readFileSync(path.join(dir, "c.pem"), "utf8") + readFileSync(path.join(dir, "k.pem"), "utf8"));
    }],
    ["NC.2.4", "an address the serving certificate does not hold", () => undefined, ["--address", "127.0.0.1", "--address", "10.9.9.9"]],
  ];
  for (const [id, what, mutate, args] of mutations) {
    it(`${id} fails when ${what} (exit 1, with a remediation)`, async function () {
      if (id === "NC.2.3") requireTool(this, "openssl");
      const r = copy();
      assert.equal((await audit(r)).status(id), "PASS", "passes before the change");
      await mutate(r);
      const a = await audit(r, args);
      assert.equal(a.status(id), "FAIL", `${id}: ${a.check(id).detail}`);
      assert.ok(a.check(id).remediation.length > 0);
      assert.equal(a.code, 1);
    });
  }

  it("WARN and MANUAL do not fail the run unless --strict; a wrong benchmark or root exits 2", async () => {
    const r = copy();
    writeKubeletConfig(r, { ...kubeletConfig(r), tlsMinVersion: undefined });
    writeFileSync(path.join(r, "etc/nodecert/agent.yaml"), YAML.stringify({ server: server.url, caCertHash: server.pin }), { mode: 0o600 });
    const a = await audit(r);
    assert.equal(a.status("4.2.12"), "WARN");
    assert.equal(a.status("NC.2.4"), "MANUAL");
    assert.equal(a.report.summary.fail, 0);
    assert.equal(a.code, 0);
    assert.equal((await audit(r, ["--strict"])).code, 1);
    const wrong = await nodecert(["audit", "--root", r, "--benchmark", "cis-1.5"]);
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /unknown benchmark "cis-1\.5": use cis-1\.12/);
    const missing = await nodecert(["audit", "--root", path.join(r, "nope")]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /does not exist: pass --root/);
  });
});
