// The open-file limit the shipped units really give nodecert, with their SystemCallFilter applied
// by a real systemd (PID 1 of private namespaces, scripts/unit-limits.sh), read from the node
// process's /proc/<pid>/limits. Also proves that Node.js can still raise a low soft limit to the
// hard one under the filter (prlimit64 is in @default), and that the check would catch a filter
// that forbids it.
import { strict as assert } from "node:assert";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { ROOT, requireTool, run } from "../support/helpers.js";

interface Case {
  case: string;
  up: string;
  soft: string;
  hard: string;
  seccomp: string;
  callerHard: string;
}

/** CAP_SYS_RESOURCE (bit 24) lets a process raise a hard limit; without it systemd gives the closest. */
const canRaiseHardLimits = () => (BigInt("0x" + /^CapEff:\s+([0-9a-f]+)/m.exec(readFileSync("/proc/self/status", "utf8"))![1]) >> 24n) & 1n;

describe("systemd units: the open-file limit under a real systemd", function () {
  this.timeout(180_000);
  let cases: Record<string, Case>;
  before(async function () {
    requireTool(this, "unshare");
    requireTool(this, "pgrep");
    requireTool(this, "curl");
    if (!existsSync("/lib/systemd/systemd")) {
      if (process.env.CI === "true") throw new Error("/lib/systemd/systemd is required in CI (package systemd)");
      console.log("      skipped: no /lib/systemd/systemd");
      this.skip();
    }
    const r = await run("bash", [path.join(ROOT, "scripts/unit-limits.sh")], { timeoutMs: 170_000 });
    assert.equal(r.code, 0, r.stderr);
    cases = Object.fromEntries(r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Case).map((c) => [c.case, c]));
    for (const c of Object.values(cases)) console.log(`      ${c.case}: soft ${c.soft}, hard ${c.hard}, seccomp mode ${c.seccomp} (this process tree's hard limit ${c.callerHard})`);
  });

  const expected = (want: number, c: Case) => (canRaiseHardLimits() ? want : Math.min(want, Number(c.callerHard)));

  it("both units declare LimitNOFILE=", () => {
    assert.match(readFileSync(path.join(ROOT, "systemd/nodecert-server.service"), "utf8"), /^LimitNOFILE=65536$/m);
    assert.match(readFileSync(path.join(ROOT, "systemd/nodecert-agent.service"), "utf8"), /^LimitNOFILE=8192$/m);
  });

  it("the server unit as shipped: soft = hard = LimitNOFILE (or the closest this machine allows), seccomp filter on", () => {
    const c = cases.server;
    assert.equal(c.up, "up", "the server started under the unit and answered /healthz");
    assert.equal(c.seccomp, "2", "SystemCallFilter is in force (seccomp filter mode)");
    assert.equal(Number(c.soft), expected(65536, c));
    assert.equal(c.soft, c.hard);
  });

  it("the agent unit as shipped: soft = hard = 8192, seccomp filter on", () => {
    const c = cases.agent;
    assert.equal(c.up, "up");
    assert.equal(c.seccomp, "2");
    assert.equal(Number(c.soft), expected(8192, c));
    assert.equal(c.soft, c.hard);
  });

  it("with a soft limit of 1024 Node raises it to the hard limit under the unit's filter; a filter denying prlimit64 keeps it at 1024", () => {
    assert.equal(cases["server-soft"].seccomp, "2");
    assert.equal(cases["server-soft"].soft, cases["server-soft"].hard, "raised: prlimit64 is allowed by @system-service minus @privileged @resources");
    assert.notEqual(cases["server-soft"].soft, "1024");
    assert.equal(cases["server-soft-deny"].soft, "1024", "the control: with prlimit64 and setrlimit denied the raise fails");
    assert.equal(cases["server-soft-deny"].up, "up", "and the server still runs (EPERM, not a kill)");
  });
});
