// Puts the process on the crypto provider its mode asks for. Node picks its OpenSSL providers at
// startup, so switching to FIPS means re-executing once: the parent writes an OpenSSL config
// (0600, private directory) whose nodejs_conf section includes the host's fipsmodule.cnf and
// activates the fips and base providers with default_properties = fips=yes, then runs itself
// again with OPENSSL_CONF, OPENSSL_MODULES and --enable-fips (--force-fips for "on"). The child
// runs the self-test before any work; the parent forwards signals and exits with its code.
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { getFips } from "node:crypto";
import os from "node:os";
import path from "node:path";
import {
  detectHostFips,
  findFipsProvider,
  providerIdentity,
  type DetectOptions,
  type FipsProvider,
  type HostFips,
} from "./detect.js";
import { describeSelfTest, runSelfTest } from "./self-test.js";
import { type FipsMode } from "./fips-mode.js";
import { decideMode, fipsOpensslConfig, missingProviderMessage } from "./fips-decision.js";
import type { CryptoReport, ProviderInfo } from "./report.js";
import { recordProcessCrypto } from "./process.js";

// Mode parsing, the decision and the report are their own modules; re-exported for the verbs.
export { FIPS_MODES, parseFipsMode, type FipsMode } from "./fips-mode.js";
export { decideMode, fipsOpensslConfig, missingProviderMessage, type ModeDecision } from "./fips-decision.js";
export { cryptoReportFields, cryptoSummary, type CryptoReport, type ProviderInfo } from "./report.js";
export { currentCryptoReport } from "./process.js";

/** Set in the re-executed child (JSON); its presence means "do not re-execute again". */
export const FIPS_CHILD_ENV = "NODECERT_FIPS_CHILD";
const READY = "nodecert-fips-ready";

export class FipsError extends Error {
  override name = "FipsError";
}

export interface EnsureCryptoOptions extends DetectOptions {
  /** Directory for the generated OpenSSL config; default a private directory under the temp dir. */
  stateDir?: string;
  /** Process image to re-execute (defaults: this process). */
  execPath?: string;
  execArgv?: string[];
  argv?: string[];
}

interface ChildMarker {
  mode: FipsMode;
  reason: string;
  provider: ProviderInfo;
  host: HostFips;
  configFile: string;
  /** OPENSSL_CONF / OPENSSL_MODULES as the parent had them, restored for our own subprocesses. */
  restore: Record<string, string | null>;
}

export interface FipsExecPlan {
  execPath: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /** Created for this run; removed once the child has read it (or has exited). */
  configDir: string;
  configFile: string;
}

/** Writes the config (0600 in a 0700 directory) and works out the child's command line and env. */
export function planFipsExec(mode: FipsMode, provider: FipsProvider, marker: Omit<ChildMarker, "configFile" | "restore">, o: EnsureCryptoOptions = {}): FipsExecPlan {
  const env = o.env ?? process.env;
  // mkdtemp makes a fresh 0700 directory: nobody else can swap the config under us.
  if (o.stateDir) mkdirSync(o.stateDir, { recursive: true, mode: 0o700 });
  const configDir = mkdtempSync(o.stateDir ? path.join(o.stateDir, "fips-") : path.join(os.tmpdir(), "nodecert-fips-"));
  // .include takes the path verbatim (no quoting): a path OpenSSL could misread is copied in.
  let include = provider.config;
  if (!/^[A-Za-z0-9_./@+:-]+$/.test(include)) {
    include = path.join(configDir, "fipsmodule.cnf");
    copyFileSync(provider.config, include);
  }
  const configFile = path.join(configDir, "openssl-fips.cnf");
  writeFileSync(configFile, fipsOpensslConfig(include), { mode: 0o600, flag: "wx" });
  const restore = { OPENSSL_CONF: env.OPENSSL_CONF ?? null, OPENSSL_MODULES: env.OPENSSL_MODULES ?? null };
  const childMarker: ChildMarker = { ...marker, configFile, restore };
  const execArgv = (o.execArgv ?? process.execArgv).filter((a) => a !== "--enable-fips" && a !== "--force-fips");
  return {
    execPath: o.execPath ?? process.execPath,
    args: [...execArgv, mode === "on" ? "--force-fips" : "--enable-fips", ...(o.argv ?? process.argv).slice(1)],
    env: { ...env, OPENSSL_CONF: configFile, OPENSSL_MODULES: provider.dir, [FIPS_CHILD_ENV]: JSON.stringify(childMarker) },
    configDir,
    configFile,
  };
}

const FORWARDED = ["SIGTERM", "SIGINT", "SIGHUP"] as const;
const RERAISE = ["SIGTERM", "SIGINT", "SIGHUP", "SIGKILL"] as const;

/** Runs the plan's child with our stdio; never resolves: this process exits with the child. */
function execFipsChild(plan: FipsExecPlan, provider: FipsProvider): Promise<never> {
  return new Promise<never>(() => {
    let cleaned = false;
    const cleanup = () => {
      if (cleaned) return;
      cleaned = true;
      rmSync(plan.configDir, { recursive: true, force: true });
    };
    let ready = false;
    const child = spawn(plan.execPath, plan.args, { env: plan.env, stdio: ["inherit", "inherit", "inherit", "ipc"] });
    const handlers = FORWARDED.map((sig) => {
      const h = () => {
        if (child.exitCode === null && child.signalCode === null) child.kill(sig);
      };
      process.on(sig, h);
      return [sig, h] as const;
    });
    child.on("message", (m: unknown) => {
      if ((m as { type?: string })?.type === READY) {
        ready = true;
        cleanup(); // OpenSSL has read the config; nothing should find it lying around
      }
    });
    child.on("error", (e) => {
      cleanup();
      process.stderr.write(`error: cannot re-execute in FIPS mode (${plan.execPath}): ${e.message}\n`);
      process.exit(1);
    });
    child.on("exit", (code, signal) => {
      cleanup();
      for (const [sig, h] of handlers) process.off(sig, h);
      if (!ready && code !== 0) {
        process.stderr.write(
          `error: the FIPS-mode process exited (${signal ?? `code ${code}`}) before its self-test passed: ` +
            `Node.js could not run on the FIPS provider ${provider.module} with ${provider.config} ` +
            `(found via ${provider.source}, OPENSSL_MODULES=${provider.dir}). Refusing to start.\n`,
        );
        process.exit(code || 1);
      }
      if (signal) {
        // Die the way the child died (no core dump from a relay), else the shell's 128+n.
        if ((RERAISE as readonly string[]).includes(signal)) {
          process.kill(process.pid, signal);
          return;
        }
        process.exit(128 + (os.constants.signals[signal] ?? 0));
      }
      process.exit(code ?? 1);
    });
  });
}

/** In the re-executed child: prove FIPS mode, report, tell the parent, undo our env changes. */
async function childStartup(raw: string): Promise<CryptoReport> {
  let marker: ChildMarker;
  try {
    marker = JSON.parse(raw) as ChildMarker;
  } catch {
    throw new FipsError(`${FIPS_CHILD_ENV} is set but not valid JSON: refusing to guess the crypto mode`);
  }
  delete process.env[FIPS_CHILD_ENV];
  // OpenSSL has loaded its config; our own subprocesses (hooks, openssl) get the operator's env.
  for (const [k, v] of Object.entries(marker.restore ?? {})) {
    if (v === null) delete process.env[k];
    else process.env[k] = v;
  }
  const selfTest = await runSelfTest({ expectFips: true });
  if (!selfTest.ok) {
    throw new FipsError(
      `FIPS self-test failed on the provider ${marker.provider.module} (config ${marker.provider.config}, found via ${marker.provider.source}): ` +
        `${describeSelfTest(selfTest)}. Refusing to start.`,
    );
  }
  const report: CryptoReport = {
    mode: marker.mode,
    fips: true,
    reason: marker.reason,
    openssl: process.versions.openssl,
    provider: marker.provider,
    host: marker.host,
    selfTest,
  };
  if (process.send && process.connected) {
    process.send({ type: READY });
    // The parent is only a signal relay: if it dies, stop as if it had sent SIGTERM.
    process.once("disconnect", () => process.kill(process.pid, "SIGTERM"));
    process.channel?.unref();
  }
  return report;
}

/**
 * Makes the process run on the crypto provider `mode` asks for, or throws a FipsError saying
 * what is missing and where it looked. Returns the report (in this process or, after a
 * re-execution, in the child); a parent that re-executed never returns and exits with the child.
 */
export async function ensureCryptoMode(mode: FipsMode, o: EnsureCryptoOptions = {}): Promise<CryptoReport> {
  const env = o.env ?? process.env;
  const marker = env[FIPS_CHILD_ENV];
  if (marker) return recordProcessCrypto(await childStartup(marker));

  const host = detectHostFips({ procFipsPath: o.procFipsPath, env });
  const defaultProvider: ProviderInfo = { name: "OpenSSL default provider", version: process.versions.openssl };

  if (getFips() === 1) {
    // Started in FIPS mode by the caller (their OPENSSL_CONF / --enable-fips): prove it, keep it.
    const selfTest = await runSelfTest({ expectFips: true });
    if (!selfTest.ok) throw new FipsError(`the process was started in FIPS mode (crypto.getFips() = 1) but the FIPS self-test failed: ${describeSelfTest(selfTest)}. Refusing to start.`);
    const found = env.OPENSSL_MODULES ? findFipsProvider({ ...o, providerDir: env.OPENSSL_MODULES, env }).provider : undefined;
    const provider: ProviderInfo = found ? { ...providerIdentity(found.module), module: found.module, config: found.config, source: "the caller's OPENSSL_CONF" } : { name: "FIPS provider from the caller's OPENSSL_CONF" };
    const reason = `the process was started in FIPS mode by its caller (OPENSSL_CONF=${env.OPENSSL_CONF ?? "unset"})` + (mode === "off" ? "; fips: off cannot switch it back" : "");
    return recordProcessCrypto({ mode, fips: true, reason, openssl: process.versions.openssl, provider, host, selfTest });
  }

  const decision = decideMode(mode, host, o.providerDir);
  if (!decision.wantFips) {
    const selfTest = await runSelfTest({ expectFips: false });
    if (!selfTest.ok) throw new FipsError(`crypto self-test failed on the default provider: ${describeSelfTest(selfTest)}. Refusing to start.`);
    return recordProcessCrypto({ mode, fips: false, reason: decision.reason, openssl: process.versions.openssl, provider: defaultProvider, host, selfTest });
  }

  const search = findFipsProvider({ ...o, env });
  if (!search.provider) throw new FipsError(missingProviderMessage(mode, decision, search));
  const p = search.provider;
  const info: ProviderInfo = { ...providerIdentity(p.module), module: p.module, config: p.config, source: p.source };
  const plan = planFipsExec(mode, p, { mode, reason: `${decision.reason}: running on ${info.name}${info.version ? ` ${info.version}` : ""} (${p.module}, found via ${p.source})`, provider: info, host }, o);
  return execFipsChild(plan, p);
}

