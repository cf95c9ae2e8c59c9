// Test support for the FIPS suites: fake providers for detection, the real provider built from
// Debian's openssl source by scripts/fips-provider.sh, and long-running nodecert processes.
import { createHmac } from "node:crypto";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Context } from "mocha";
import { FIPS_MAC_KEY_HEX, INSTALL_STATUS_OK } from "../../src/crypto/detect.js";
import { BIN, ROOT, run, tempDir } from "../support/helpers.js";

/** A file standing in for /proc/sys/crypto/fips_enabled. */
export function procFile(content: string): string {
  const p = path.join(tempDir(), "fips_enabled");
  writeFileSync(p, content);
  return p;
}

const mac = (data: Buffer | string) =>
  createHmac("sha256", Buffer.from(FIPS_MAC_KEY_HEX, "hex"))
    .update(data)
    .digest("hex")
    .toUpperCase()
    .match(/../g)!
    .join(":");

/** The fipsmodule.cnf `openssl fipsinstall` would write for a module with these bytes. */
export function fipsModuleCnf(moduleBytes: Buffer): string {
  return [
    "[fips_sect]",
    "activate = 1",
    "install-version = 1",
    "conditional-errors = 1",
    "security-checks = 1",
    `module-mac = ${mac(moduleBytes)}`,
    `install-mac = ${mac(INSTALL_STATUS_OK)}`,
    `install-status = ${INSTALL_STATUS_OK}`,
    "",
  ].join("\n");
}

/**
 * A directory with a fake fips.so (not loadable: detection only) and a matching
 * fipsmodule.cnf, in the directory itself or in configDir.
 */
export function fakeProvider(o: { noConfig?: boolean; configDir?: string; parent?: string } = {}): string {
  const dir = o.parent ? mkdtempSync(path.join(o.parent, "fips-")) : path.join(tempDir(), "ossl-modules");
  mkdirSync(dir, { recursive: true });
  const bytes = Buffer.concat([Buffer.from("\x7fELF fake module\0OpenSSL FIPS Provider\0buildinfo\x003.0.99\0", "latin1"), Buffer.from(dir)]);
  writeFileSync(path.join(dir, "fips.so"), bytes);
  if (!o.noConfig) writeFileSync(path.join(o.configDir ?? dir, "fipsmodule.cnf"), fipsModuleCnf(bytes));
  return dir;
}

let built: Promise<{ dir?: string; error?: string; seconds: number }> | undefined;

/**
 * Builds (or reuses) the real FIPS provider. With CI=true a failure fails the suite; elsewhere
 * the suite skips and says why.
 */
export async function requireFipsProvider(ctx: Context): Promise<string> {
  built ??= (async () => {
    const started = Date.now();
    const r = await run("bash", [path.join(ROOT, "scripts/fips-provider.sh")], { timeoutMs: 20 * 60_000 });
    const seconds = (Date.now() - started) / 1000;
    const dir = r.stdout.trim().split("\n").pop() ?? "";
    if (r.code === 0 && dir && existsSync(path.join(dir, "fips.so")) && existsSync(path.join(dir, "fipsmodule.cnf"))) return { dir, seconds };
    return { error: `scripts/fips-provider.sh failed (exit ${r.code}): ${r.stderr.trim().split("\n").slice(-5).join(" | ")}`, seconds };
  })();
  const b = await built;
  if (b.dir) return b.dir;
  if (process.env.CI === "true") throw new Error(`the FIPS provider is required in CI: ${b.error}`);
  console.log(`      skipped: no FIPS provider could be built here: ${b.error}`);
  ctx.skip();
}

/** A long-running nodecert process whose output is collected and can be waited on. */
export class Proc {
  out = "";
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  constructor(args: string[], env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(BIN, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
    this.child.stdout!.on("data", (d) => (this.out += d));
    this.child.stderr!.on("data", (d) => (this.out += d));
    this.exited = new Promise((r) => this.child.on("exit", (code, signal) => r({ code, signal })));
  }
  waitFor(re: RegExp, ms = 30_000): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out waiting for ${re}:\n${this.out}`)), ms);
      const check = () => {
        const m = re.exec(this.out);
        if (m) {
          clearTimeout(t);
          this.child.stdout!.off("data", check);
          resolve(m);
        }
      };
      this.child.stdout!.on("data", check);
      this.child.on("exit", (code, signal) => setTimeout(() => (clearTimeout(t), reject(new Error(`exited (${signal ?? code}) while waiting for ${re}:\n${this.out}`))), 50));
      check();
    });
  }
  /** The re-executed child: the relay's only child process. */
  childPids(): number[] {
    const pid = this.child.pid!;
    try {
      return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  }
  stop(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
  }
}

export const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
export async function until(fn: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (fn()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return fn();
}

