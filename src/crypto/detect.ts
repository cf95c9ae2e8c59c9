// Finds out whether FIPS is wanted and possible here: the host's FIPS mode and a FIPS-capable
// OpenSSL provider on disk. Every finding carries the reason, and every place looked at is listed.
import { readFileSync, statSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import path from "node:path";

export const PROC_FIPS_ENABLED = "/proc/sys/crypto/fips_enabled";
export const FIPS_MODULE_FILE = "fips.so";
export const FIPS_MODULE_CONFIG = "fipsmodule.cnf";
/** The section fipsinstall writes by default (and the one our generated config refers to). */
export const FIPS_SECTION = "fips_sect";
/**
 * The HMAC-SHA256 key `openssl fipsinstall` uses for module-mac and install-mac (OpenSSL's
 * FIPS_KEY_STRING; distributions build with the default).
 */
export const FIPS_MAC_KEY_HEX = "f4556650ac31d35461610bac4ed81b1a181b2d8a43ea2854cbae22ca74560813";
export const INSTALL_STATUS_OK = "INSTALL_SELF_TEST_KATS_RUN";

/** Environment knobs (documented for operators and used by tests to isolate the search). */
export const ENV_PROC_FILE = "NODECERT_FIPS_PROC_FILE";
/** Colon-separated module directories that replace the built-in system and snap search list. */
export const ENV_SYSTEM_DIRS = "NODECERT_FIPS_SYSTEM_DIRS";
/** The openssl binary asked for its modules directory (`none` to not ask). */
export const ENV_OPENSSL_BIN = "NODECERT_OPENSSL";

export interface DetectOptions {
  /** Default: $NODECERT_FIPS_PROC_FILE or /proc/sys/crypto/fips_enabled. */
  procFipsPath?: string;
  /** The operator's fipsProviderDir: when set, the only place a provider is taken from. */
  providerDir?: string;
  env?: NodeJS.ProcessEnv;
  /** openssl binary for `openssl version -m/-d`; null to not run it. */
  opensslBin?: string | null;
  /** Module directories replacing the built-in system + snap list (each with its config dirs). */
  systemDirs?: { dir: string; source: string; configDirs?: string[] }[];
}

// --- host FIPS mode ------------------------------------------------------------------------

export interface HostFips {
  enabled: boolean;
  path: string;
  reason: string;
}

export function detectHostFips(o: Pick<DetectOptions, "procFipsPath" | "env"> = {}): HostFips {
  const env = o.env ?? process.env;
  const p = o.procFipsPath ?? env[ENV_PROC_FILE] ?? PROC_FIPS_ENABLED;
  let text: string;
  try {
    text = readFileSync(p, "utf8").trim();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return {
      enabled: false,
      path: p,
      reason: code === "ENOENT" ? `${p} does not exist (kernel without FIPS support): host not in FIPS mode` : `cannot read ${p} (${code ?? (e as Error).message}): host FIPS mode unknown, treated as off`,
    };
  }
  if (text === "1") return { enabled: true, path: p, reason: `${p} is 1: the host kernel runs in FIPS mode` };
  if (text === "0") return { enabled: false, path: p, reason: `${p} is 0: host not in FIPS mode` };
  return { enabled: false, path: p, reason: `${p} holds "${text.slice(0, 20)}", expected 0 or 1: treated as not in FIPS mode` };
}

// --- the FIPS provider on disk -------------------------------------------------------------

export interface FipsProvider {
  /** Directory holding fips.so (what OPENSSL_MODULES must point at). */
  dir: string;
  module: string;
  config: string;
  /** Where it was found: configured fipsProviderDir, OPENSSL_MODULES, openssl version -m, snap core22, ... */
  source: string;
}

export interface ProviderLook {
  dir: string;
  source: string;
  found: boolean;
  reason: string;
}

export interface ProviderSearch {
  provider?: FipsProvider;
  looked: ProviderLook[];
}

function opensslInfo(bin: string | null, flag: "-m" | "-d"): string | undefined {
  if (!bin) return undefined;
  try {
    const out = execFileSync(bin, ["version", flag], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 5000, env: { ...process.env, OPENSSL_CONF: "/dev/null" } });
    return /"([^"]*)"/.exec(out)?.[1];
  } catch {
    return undefined;
  }
}

/** Debian multiarch triplet for this machine's library directories. */
export function multiarchTriplet(arch: string = process.arch): string {
  const map: Record<string, string> = {
    x64: "x86_64-linux-gnu",
    arm64: "aarch64-linux-gnu",
    arm: "arm-linux-gnueabihf",
    ppc64: "powerpc64le-linux-gnu",
    s390x: "s390x-linux-gnu",
    riscv64: "riscv64-linux-gnu",
    ia32: "i386-linux-gnu",
  };
  return map[arch] ?? `${arch}-linux-gnu`;
}

const CONFIG_DIRS = ["/usr/lib/ssl", "/etc/ssl", "/usr/local/ssl"];

/** The built-in search list after the configured dir and OPENSSL_MODULES. */
export function defaultSystemDirs(o: Pick<DetectOptions, "env" | "opensslBin"> = {}): { dir: string; source: string; configDirs?: string[] }[] {
  const env = o.env ?? process.env;
  const fromEnv = env[ENV_SYSTEM_DIRS];
  if (fromEnv !== undefined) {
    return fromEnv
      .split(":")
      .filter(Boolean)
      .map((dir) => ({ dir, source: ENV_SYSTEM_DIRS, configDirs: [] }));
  }
  const bin = o.opensslBin !== undefined ? o.opensslBin : env[ENV_OPENSSL_BIN] === "none" ? null : (env[ENV_OPENSSL_BIN] ?? "openssl");
  const opensslDir = opensslInfo(bin, "-d");
  const hostConfigDirs = [...(opensslDir ? [opensslDir] : []), ...CONFIG_DIRS];
  const triplet = multiarchTriplet();
  const out: { dir: string; source: string; configDirs?: string[] }[] = [];
  const modulesDir = opensslInfo(bin, "-m");
  if (modulesDir) out.push({ dir: modulesDir, source: "openssl version -m", configDirs: hostConfigDirs });
  out.push({ dir: `/usr/lib/${triplet}/ossl-modules`, source: "system", configDirs: hostConfigDirs });
  out.push({ dir: "/usr/lib64/ossl-modules", source: "system", configDirs: hostConfigDirs });
  if (env.SNAP) out.push({ dir: path.join(env.SNAP, `usr/lib/${triplet}/ossl-modules`), source: "$SNAP", configDirs: [path.join(env.SNAP, "usr/lib/ssl"), path.join(env.SNAP, "etc/ssl")] });
  for (const core of ["core24", "core22", "core20"]) {
    const root = `/snap/${core}/current`;
    out.push({ dir: `${root}/usr/lib/${triplet}/ossl-modules`, source: `snap ${core}`, configDirs: [`${root}/usr/lib/ssl`, `${root}/etc/ssl`] });
  }
  return out;
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Parses the key = value pairs of one section of an OpenSSL config file. */
export function parseConfigSection(text: string, section: string): Record<string, string> | undefined {
  let current: string | undefined;
  let out: Record<string, string> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/(^|\s)#.*$/, "").trim();
    if (!line) continue;
    const head = /^\[\s*([^\]\s]+)\s*\]$/.exec(line);
    if (head) {
      current = head[1];
      if (current === section) out ??= {};
      continue;
    }
    const kv = /^([^=\s]+)\s*=\s*(.*)$/.exec(line);
    if (kv && current === section && out) out[kv[1]] = kv[2].trim();
  }
  return out;
}

const macHex = (s: string) => s.replace(/:/g, "").toLowerCase();

/**
 * The integrity check OpenSSL runs when it loads the module, done here first so a tampered or
 * mismatched fipsmodule.cnf is refused with a reason instead of an OpenSSL abort: module-mac is
 * the HMAC-SHA256 of fips.so, install-mac that of install-status.
 */
export function checkProviderIntegrity(module: string, config: string, keyHex = FIPS_MAC_KEY_HEX): { ok: true } | { ok: false; reason: string } {
  let text: string;
  let moduleBytes: Buffer;
  try {
    text = readFileSync(config, "utf8");
    moduleBytes = readFileSync(module);
  } catch (e) {
    return { ok: false, reason: `cannot read ${(e as NodeJS.ErrnoException).path ?? config}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` };
  }
  const sect = parseConfigSection(text, FIPS_SECTION);
  if (!sect) return { ok: false, reason: `${config} has no [${FIPS_SECTION}] section` };
  if (sect.activate !== "1") return { ok: false, reason: `${config} does not activate the provider (no "activate = 1" in [${FIPS_SECTION}])` };
  if (!sect["module-mac"]) return { ok: false, reason: `${config} has no module-mac: it is not a fipsinstall output` };
  const key = Buffer.from(keyHex, "hex");
  let actual: string;
  try {
    actual = createHmac("sha256", key).update(moduleBytes).digest("hex");
  } catch (e) {
    return { ok: false, reason: `cannot compute HMAC-SHA256 over ${module}: ${(e as Error).message}` };
  }
  if (macHex(sect["module-mac"]) !== actual) {
    return {
      ok: false,
      reason: `integrity check failed: module-mac in ${config} does not match ${module} (the module or its fipsmodule.cnf was modified, or they come from different installs; rerun openssl fipsinstall)`,
    };
  }
  if (sect["install-status"] !== undefined || sect["install-mac"] !== undefined) {
    if (sect["install-status"] !== INSTALL_STATUS_OK) return { ok: false, reason: `integrity check failed: install-status in ${config} is "${sect["install-status"] ?? ""}", expected ${INSTALL_STATUS_OK}` };
    const want = createHmac("sha256", key).update(INSTALL_STATUS_OK).digest("hex");
    if (macHex(sect["install-mac"] ?? "") !== want) return { ok: false, reason: `integrity check failed: install-mac in ${config} does not match its install-status (the file was modified)` };
  }
  return { ok: true };
}

function lookIn(dir: string, source: string, configDirs: string[]): { provider?: FipsProvider; look: ProviderLook } {
  const module = path.join(dir, FIPS_MODULE_FILE);
  if (!isFile(module)) return { look: { dir, source, found: false, reason: `no ${FIPS_MODULE_FILE}` } };
  const candidates = [...new Set([dir, ...configDirs].map((d) => path.join(d, FIPS_MODULE_CONFIG)))].filter(isFile);
  if (candidates.length === 0) {
    const where = [...new Set([dir, ...configDirs])].join(", ");
    return { look: { dir, source, found: false, reason: `${FIPS_MODULE_FILE} present but no ${FIPS_MODULE_CONFIG} in ${where}` } };
  }
  const problems: string[] = [];
  for (const config of candidates) {
    const c = checkProviderIntegrity(module, config);
    if (c.ok) return { provider: { dir, module, config, source }, look: { dir, source, found: true, reason: `${module} with ${config} (integrity check passed)` } };
    problems.push(c.reason);
  }
  return { look: { dir, source, found: false, reason: problems.join("; ") } };
}

/**
 * Looks for fips.so and a fipsmodule.cnf that belongs to it. A configured providerDir is the
 * only place looked at (the operator said where); otherwise OPENSSL_MODULES, then the system
 * OpenSSL's modules directory, then snap core paths. The first pair that passes the integrity
 * check wins; every place looked at is listed with what was wrong there.
 */
export function findFipsProvider(o: DetectOptions = {}): ProviderSearch {
  const env = o.env ?? process.env;
  const dirs: { dir: string; source: string; configDirs: string[] }[] = [];
  if (o.providerDir) {
    dirs.push({ dir: path.resolve(o.providerDir), source: "configured fipsProviderDir", configDirs: [] });
  } else {
    if (env.OPENSSL_MODULES) dirs.push({ dir: path.resolve(env.OPENSSL_MODULES), source: "OPENSSL_MODULES", configDirs: [] });
    for (const s of o.systemDirs ?? defaultSystemDirs({ env, opensslBin: o.opensslBin })) dirs.push({ dir: s.dir, source: s.source, configDirs: s.configDirs ?? [] });
  }
  const looked: ProviderLook[] = [];
  const seen = new Set<string>();
  for (const d of dirs) {
    if (seen.has(d.dir)) continue;
    seen.add(d.dir);
    const r = lookIn(d.dir, d.source, d.configDirs);
    looked.push(r.look);
    if (r.provider) return { provider: r.provider, looked };
  }
  return { looked };
}

/** "  - /dir (source): reason" lines for error messages and status. */
export function describeLooks(looked: ProviderLook[]): string {
  if (looked.length === 0) return "  (no directories to search)";
  return looked.map((l) => `  - ${l.dir} (${l.source}): ${l.reason}`).join("\n");
}

/** Name and version of the provider in fips.so, read from the module's own strings. */
export function providerIdentity(module: string): { name: string; version?: string } {
  try {
    const bytes = readFileSync(module);
    const marker = Buffer.from("OpenSSL FIPS Provider\0");
    const at = bytes.indexOf(marker);
    if (at < 0) return { name: "FIPS provider" };
    const after = bytes.subarray(at + marker.length, at + marker.length + 256).toString("latin1");
    const version = /(?:^|\0)(\d+\.\d+\.\d+[A-Za-z0-9.+~-]*)\0/.exec(after)?.[1];
    return { name: "OpenSSL FIPS Provider", version };
  } catch {
    return { name: "FIPS provider" };
  }
}
