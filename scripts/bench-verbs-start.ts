// Start-to-exit time of the new node verbs (audit, kubelet configure) against --help and status,
// all through the built bin/nodecert on one kubeadm-shaped temp root (the kubelet fixtures under
// test/fixtures/kubeadm). Prints the median of N runs and the ratio to `status`, which is the
// floor a node verb is compared with. Usage: node --import tsx scripts/bench-verbs-start.ts [N]
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const BIN = path.join(ROOT, "bin/nodecert");
const n = Number(process.argv[2] ?? 15);
const root = mkdtempSync(path.join(os.tmpdir(), "bench-verbs-"));
mkdirSync(path.join(root, "var/lib/kubelet"), { recursive: true });
mkdirSync(path.join(root, "etc/systemd/system/kubelet.service.d"), { recursive: true });
copyFileSync(path.join(ROOT, "test/fixtures/kubeadm/config.yaml"), path.join(root, "var/lib/kubelet/config.yaml"));
copyFileSync(path.join(ROOT, "test/fixtures/kubeadm/10-kubeadm.conf"), path.join(root, "etc/systemd/system/kubelet.service.d/10-kubeadm.conf"));
execFileSync("node", [path.join(ROOT, "scripts/build.mjs")], { stdio: "ignore" });

const cases: [string, string[]][] = [
  ["--help", ["--help"]],
  ["status", ["status", "--root", root]],
  ["audit", ["audit", "--root", root]],
  ["audit -o json", ["audit", "--root", root, "-o", "json"]],
  ["kubelet configure", ["kubelet", "configure", "--root", root]],
];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = new Map<string, number>();
for (const [name, args] of cases) {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    spawnSync(BIN, args, { stdio: "ignore" });
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  results.set(name, median(times));
}
const floor = results.get("status")!;
console.log(`runs per verb: ${n}; load average: ${os.loadavg().map((x) => x.toFixed(2)).join(" ")}`);
for (const [name, ms] of results) console.log(`${name.padEnd(20)} median ${ms.toFixed(0).padStart(5)} ms   ${(ms / floor).toFixed(2)}x status`);
rmSync(root, { recursive: true, force: true });
