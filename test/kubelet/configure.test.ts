// `nodecert kubelet configure` on kubeadm's own config.yaml files (the built CLI on a temp root):
// the diff, --write with a backup, an idempotent rerun, and refusal of what is not a kubelet config.
import { strict as assert } from "node:assert";
import { chmodSync, copyFileSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { ROOT, nodecert, tempDir } from "../support/helpers.js";

const FIX = path.join(ROOT, "test/fixtures/kubeadm");
const SERVING = "/var/lib/kubelet/pki/kubelet-server-current.pem";

function node(fixture: string, transform: (t: string) => string = (t) => t): { root: string; file: string; dir: string } {
  const root = path.join(tempDir(), "node");
  const dir = path.join(root, "var/lib/kubelet");
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, "config.yaml");
  writeFileSync(file, transform(readFileSync(path.join(FIX, fixture), "utf8")));
  chmodSync(file, 0o600);
  return { root, file, dir };
}
const changedLines = (diff: string) => diff.split("\n").filter((l) => /^[-+](?![-+]{2} )/.test(l));

describe("kubelet configure: kubeadm's config.yaml made to use nodecert's certificates", function () {
  this.timeout(60_000);

  it("a dry run prints the diff (only the lines that must change), writes nothing, and --check exits 1", async () => {
    const n = node("config.yaml");
    const before = readFileSync(n.file, "utf8");
    const r = await nodecert(["kubelet", "configure", "--root", n.root]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(changedLines(r.stdout), ["-rotateCertificates: true", "+rotateCertificates: false", `+tlsCertFile: ${SERVING}`, `+tlsPrivateKeyFile: ${SERVING}`]);
    assert.match(r.stdout, /^--- a\/var\/lib\/kubelet\/config\.yaml$/m);
    assert.match(r.stdout, /^# tlsCertFile: \(unset\) -> "\/var\/lib\/kubelet\/pki\/kubelet-server-current\.pem" \(CIS 4\.2\.9/m);
    assert.match(r.stdout, /dry run: nothing written/);
    assert.equal(readFileSync(n.file, "utf8"), before);
    assert.deepEqual(readdirSync(n.dir), ["config.yaml"], "no backup in a dry run");
    assert.equal((await nodecert(["kubelet", "configure", "--root", n.root, "--check"])).code, 1);
  });

  it("--write applies it atomically with a byte-identical backup, keeps the mode and every other field; a rerun changes nothing", async () => {
    const n = node("config.yaml");
    const before = readFileSync(n.file, "utf8");
    const w = await nodecert(["kubelet", "configure", "--root", n.root, "--write"]);
    assert.equal(w.code, 0, w.stderr);
    const backups = readdirSync(n.dir).filter((f) => f.startsWith("config.yaml.nodecert-backup-"));
    assert.equal(backups.length, 1);
    assert.match(backups[0], /^config\.yaml\.nodecert-backup-\d{8}T\d{6}Z$/);
    assert.equal(readFileSync(path.join(n.dir, backups[0]), "utf8"), before);
    assert.equal(statSync(path.join(n.dir, backups[0])).mode & 0o777, 0o600);
    assert.equal(statSync(n.file).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(n.dir).filter((f) => f.includes(".nodecert-tmp-")), [], "no temp file left");
    const old = YAML.parse(before) as Record<string, unknown>;
    const now = YAML.parse(readFileSync(n.file, "utf8")) as Record<string, unknown>;
    assert.deepEqual(now, { ...old, rotateCertificates: false, tlsCertFile: SERVING, tlsPrivateKeyFile: SERVING });
    assert.deepEqual(Object.keys(now), [...Object.keys(now)].sort(), "kubeadm's alphabetical order is kept");

    const written = readFileSync(n.file, "utf8");
    const again = await nodecert(["kubelet", "configure", "--root", n.root, "--write"]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /nothing to change/);
    assert.equal(readFileSync(n.file, "utf8"), written, "byte for byte");
    assert.equal(readdirSync(n.dir).filter((f) => f.startsWith("config.yaml.nodecert-backup-")).length, 1, "no second backup");
    assert.equal((await nodecert(["kubelet", "configure", "--root", n.root, "--check"])).code, 0);
  });

  it("serverTLSBootstrap is turned off and its comment kept; a missing clientCAFile is added under authentication.x509", async () => {
    const n = node("config-server-tls-bootstrap.yaml", (t) => t.replace("  x509:\n    clientCAFile: /etc/kubernetes/pki/ca.crt\n", ""));
    assert.equal((YAML.parse(readFileSync(n.file, "utf8")) as { authentication: { x509?: unknown } }).authentication.x509, undefined);
    const w = await nodecert(["kubelet", "configure", "--root", n.root, "--write"]);
    assert.equal(w.code, 0, w.stderr);
    const text = readFileSync(n.file, "utf8");
    assert.match(text, /# signed serving certificates from the certificates API \(kubeadm docs\)\nserverTLSBootstrap: false\n/);
    const doc = YAML.parse(text) as Record<string, unknown> & { authentication: { x509: { clientCAFile: string }; webhook: { enabled: boolean } } };
    assert.equal(doc.serverTLSBootstrap, false);
    assert.equal(doc.authentication.x509.clientCAFile, "/etc/kubernetes/pki/ca.crt");
    assert.equal(doc.authentication.webhook.enabled, true, "the rest of authentication stays");
    assert.equal(doc.tlsCertFile, SERVING);
    assert.match((await nodecert(["kubelet", "configure", "--root", n.root])).stdout, /nothing to change/);
  });

  it("refuses what is not a KubeletConfiguration or not YAML (exit 2, file untouched) and says where the file is expected", async () => {
    for (const [content, why] of [["kind: Pod\napiVersion: v1\n", /not a KubeletConfiguration: kind is Pod/], ["a: [1, 2\n", /not valid YAML/], ["- just\n- a list\n", /not a mapping/]] as const) {
      const n = node("config.yaml", () => content);
      const r = await nodecert(["kubelet", "configure", "--root", n.root, "--write"]);
      assert.equal(r.code, 2, r.stdout);
      assert.match(r.stderr, why);
      assert.match(r.stderr, /nothing was changed/);
      assert.equal(readFileSync(n.file, "utf8"), content);
      assert.deepEqual(readdirSync(n.dir), ["config.yaml"]);
    }
    const missing = await nodecert(["kubelet", "configure", "--root", path.join(tempDir(), "empty")]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read .*config\.yaml: ENOENT; pass --kubelet-config/);
  });

  it("a copied kubeadm file elsewhere is found with --kubelet-config", async () => {
    const root = path.join(tempDir(), "node");
    mkdirSync(path.join(root, "etc/kubelet"), { recursive: true });
    copyFileSync(path.join(FIX, "config.yaml"), path.join(root, "etc/kubelet/kubelet.yaml"));
    const r = await nodecert(["kubelet", "configure", "--root", root, "--kubelet-config", "/etc/kubelet/kubelet.yaml", "--write"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((YAML.parse(readFileSync(path.join(root, "etc/kubelet/kubelet.yaml"), "utf8")) as { tlsCertFile: string }).tlsCertFile, SERVING);
  });
});
