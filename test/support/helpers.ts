// Shared test helpers: temp roots, a fake clock, real processes, a real server on loopback.
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { execFile, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import type { Context } from "mocha";
import { initServer } from "../../src/server/init.js";
import { runServer, type RunningServer } from "../../src/server/run.js";
import { generateToken, hashSecret, parseToken } from "../../src/server/tokens.js";
import { createLogger, silentLogger, type Logger } from "../../src/platform/log.js";

export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
export const BIN = path.join(ROOT, "bin/nodecert");

const temps: string[] = [];
export function tempDir(prefix = "nodecert-test-"): string {
  const d = mkdtempSync(path.join(os.tmpdir(), prefix));
  temps.push(d);
  return d;
}
export function cleanupTemps(): void {
  for (const d of temps.splice(0)) rmSync(d, { recursive: true, force: true });
}

export class FakeClock {
  constructor(public t: number = Date.parse("2026-06-01T00:00:00Z")) {}
  now = (): Date => new Date(this.t);
  advance(ms: number): void {
    this.t += ms;
  }
}

export const random = (n: number): Uint8Array => randomBytes(n);

/** A logger whose lines are kept in memory, to assert on content and redaction. */
export function captureLogger(component = "test"): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...chunk.toString().split("\n").filter(Boolean));
      cb();
    },
  });
  return { logger: createLogger({ stream, component, level: "debug" }), lines };
}

export function quietLogger(): Logger {
  return silentLogger();
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { env: { ...process.env, ...(opts.env ?? {}) }, cwd: opts.cwd, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException).code === "number" ? ((err as unknown as { code: number }).code) : 1) : 0;
      // A process killed at the timeout (or by a signal) has no exit code: say so, or a failure reads as a silent exit 1.
      const killed = err && (err as { signal?: string }).signal ? `\n[${cmd} killed by ${(err as { signal?: string }).signal}${(err as { killed?: boolean }).killed ? ` after the ${opts.timeoutMs ?? 60_000} ms timeout` : ""}]` : "";
      resolve({ code, stdout: stdout.toString(), stderr: stderr.toString() + killed });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

export function nodecert(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return run(BIN, args, opts);
}

export function hasTool(name: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${name}`]).status === 0;
}

/** In CI a missing peer is a failure; on a laptop the test skips and says why. */
export function requireTool(ctx: Context, name: string): void {
  if (hasTool(name)) return;
  if (process.env.CI === "true") throw new Error(`${name} is required in CI (scripts/test-deps.sh installs it)`);
  console.log(`      skipped: ${name} is not installed`);
  ctx.skip();
}

export interface TestServer extends RunningServer {
  dir: string;
  pin: string;
  logLines: string[];
  createToken(o?: { node?: string; uses?: number; ttlMs?: number }): Promise<string>;
}

/** init + run a real server on a free loopback port. */
export async function startServer(o: { dir?: string; clock?: FakeClock; overrides?: Record<string, unknown>; caCertPem?: string; caKeyPem?: string; listen?: string; heartbeatMs?: number; campaignOptions?: Partial<import("../../src/server/fleet/campaigns.js").CampaignOptions>; fips?: boolean } = {}): Promise<TestServer> {
  const dir = o.dir ?? path.join(tempDir(), "server");
  const clock = o.clock;
  // init is idempotent: a restart on the same dir keeps the CA and reports the same pin.
  const init = await initServer({ dir, listen: o.listen ?? "127.0.0.1:0", sans: ["localhost", "127.0.0.1"], caCertPem: o.caCertPem, caKeyPem: o.caKeyPem, now: clock ? clock.now() : new Date(), random });
  const { logger, lines } = captureLogger("server");
  // Every test runs on loopback: agents' serving certificates hold 127.0.0.1 (their join address).
  // /metrics on a free port: parallel test servers must not compete for the default 9444.
  const overrides = { metrics: { listen: "127.0.0.1:0" }, ...(o.overrides ?? {}), policy: { allowLoopbackSans: true, ...((o.overrides?.policy as Record<string, unknown> | undefined) ?? {}) } };
  const s = await runServer({ dir, logger, clock: clock?.now, configOverrides: overrides, listen: o.listen, heartbeatMs: o.heartbeatMs, fips: o.fips, campaignOptions: o.campaignOptions ?? { tickMs: 100, commandTimeoutMs: 15_000, retryBaseMs: 200 } });
  return Object.assign(s, {
    dir,
    pin: init.pin,
    logLines: lines,
    async createToken(t: { node?: string; uses?: number; ttlMs?: number } = {}) {
      const token = generateToken(random);
      const { id, secret } = parseToken(token)!;
      const now = clock ? clock.now() : new Date();
      await s.store.insertToken({ id, secretHash: hashSecret(secret), node: t.node, usesLeft: t.uses ?? 1, expiresAt: new Date(now.getTime() + (t.ttlMs ?? 3_600_000)), createdAt: now });
      return token;
    },
  });
}

export async function freePort(): Promise<number> {
  const net = await import("node:net");
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

/** Runs `openssl s_server` on a loopback port until stop() is called. */
export async function opensslServer(args: string[]): Promise<{ port: number; stop(): void; output(): string }> {
  const { spawn } = await import("node:child_process");
  const port = await freePort();
  const child = spawn("openssl", ["s_server", "-accept", `127.0.0.1:${port}`, ...args], { stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`s_server did not start: ${out}`)), 10_000);
    const check = () => {
      if (out.includes("ACCEPT")) {
        clearTimeout(t);
        resolve();
      }
    };
    child.stdout.on("data", check);
    child.on("exit", (c) => reject(new Error(`s_server exited ${c}: ${out}`)));
  });
  return { port, stop: () => child.kill("SIGKILL"), output: () => out };
}
