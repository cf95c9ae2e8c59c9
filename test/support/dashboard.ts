// `bin/nodecert dashboard` as its own process (what ships), and Debian's Chromium driven by
// puppeteer-core for the dashboard's browser tests.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Context } from "mocha";
import { BIN, requireTool } from "./helpers.js";

export interface DashboardProcess {
  origin: string;
  loginUrl: string;
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Starts `nodecert dashboard` on a free loopback port and reads the URL it prints. */
export async function dashboardProcess(server: { dir: string; url: string }, extra: string[] = []): Promise<DashboardProcess> {
  const child = spawn(BIN, ["dashboard", "--dir", server.dir, "--server", server.url, "--listen", "127.0.0.1:0", ...extra], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const loginUrl = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`nodecert dashboard printed no URL: ${out}`)), 30_000);
    const check = () => {
      const m = /^open: (http:\/\/\S+)$/m.exec(out);
      if (m) (clearTimeout(t), resolve(m[1]));
    };
    child.stdout!.on("data", check);
    child.on("exit", (c) => (clearTimeout(t), reject(new Error(`nodecert dashboard exited ${c}: ${out}`))));
  });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  return {
    origin: new URL(loginUrl).origin,
    loginUrl,
    child,
    output: () => out,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

/** Where screenshots go: $NODECERT_ARTIFACTS, else a directory under the system temp dir. */
export function artifactsDir(): string {
  const d = process.env.NODECERT_ARTIFACTS ?? path.join(os.tmpdir(), "nodecert-artifacts", "dashboard");
  mkdirSync(d, { recursive: true });
  return d;
}

export const CHROMIUM = "/usr/bin/chromium";

export async function launchChromium(ctx: Context) {
  requireTool(ctx, "chromium");
  const { default: puppeteer } = await import("puppeteer-core");
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Root in CI: Chromium's sandbox needs user namespaces it may not get there.
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check"],
    defaultViewport: { width: 1400, height: 900 },
  });
}
