// Detection, decision, policy and the re-exec plan, with injected paths: a fake
// /proc/sys/crypto/fips_enabled, fake module directories holding a fake fips.so and a
// fipsmodule.cnf whose MACs are computed the way `openssl fipsinstall` does.
import { strict as assert } from "node:assert";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { getFips } from "node:crypto";
import {
  checkProviderIntegrity,
  defaultSystemDirs,
  detectHostFips,
  findFipsProvider,
  parseConfigSection,
  providerIdentity,
  ENV_SYSTEM_DIRS,
  multiarchTriplet,
} from "../../src/crypto/detect.js";
import { describeSelfTest, runSelfTest } from "../../src/crypto/self-test.js";
import {
  allowedKeyAlgorithms,
  assertFipsKeyAlgorithm,
  FIPS_KEY_ALGORITHMS,
  FIPS_TLS13_CIPHERSUITES,
  fipsKeyAlgorithmDecision,
  fipsSignatureHashDecision,
  tlsCipherOptions,
} from "../../src/crypto/fips-policy.js";
import { decideMode, ensureCryptoMode, FIPS_CHILD_ENV, FipsError, fipsOpensslConfig, planFipsExec, currentCryptoReport } from "../../src/crypto/fips-exec.js";
import { cryptoRecord } from "../../src/agent/crypto-record.js";
import { formatCryptoLines } from "../../src/agent/status.js";
import { KEY_ALGORITHMS } from "../../src/pki/keys.js";
import { AgentConfig } from "../../src/config/agent.js";
import { ServerConfig } from "../../src/config/server.js";
import { nodecert, tempDir } from "../support/helpers.js";
import { fakeProvider, procFile } from "./fips-support.js";

describe("crypto: FIPS detection", function () {
  describe("host FIPS mode", () => {
    it("reads /proc/sys/crypto/fips_enabled (path injected) and says why", () => {
      const on = detectHostFips({ procFipsPath: procFile("1\n") });
      assert.equal(on.enabled, true);
      assert.match(on.reason, /is 1: the host kernel runs in FIPS mode/);
      const off = detectHostFips({ procFipsPath: procFile("0\n") });
      assert.equal(off.enabled, false);
      assert.match(off.reason, /is 0: host not in FIPS mode/);
      const missing = detectHostFips({ procFipsPath: path.join(tempDir(), "nope") });
      assert.equal(missing.enabled, false);
      assert.match(missing.reason, /does not exist \(kernel without FIPS support\)/);
      const junk = detectHostFips({ procFipsPath: procFile("yes") });
      assert.equal(junk.enabled, false);
      assert.match(junk.reason, /holds "yes", expected 0 or 1/);
      const viaEnv = detectHostFips({ env: { NODECERT_FIPS_PROC_FILE: procFile("1") } });
      assert.equal(viaEnv.enabled, true);
    });
  });

  describe("provider search", () => {
    it("finds fips.so with a matching fipsmodule.cnf in OPENSSL_MODULES, listing what it looked at", () => {
      const empty = tempDir();
      const good = fakeProvider();
      const r = findFipsProvider({ env: { OPENSSL_MODULES: good }, systemDirs: [{ dir: empty, source: "system" }] });
      assert.ok(r.provider);
      assert.equal(r.provider.dir, good);
      assert.equal(r.provider.module, path.join(good, "fips.so"));
      assert.equal(r.provider.config, path.join(good, "fipsmodule.cnf"));
      assert.equal(r.provider.source, "OPENSSL_MODULES");
      assert.equal(r.looked.length, 1, "stops at the first usable provider");
      assert.match(r.looked[0].reason, /integrity check passed/);
    });

    it("searches system and snap dirs in order; a module's config may live in a separate config dir", () => {
      const none = tempDir();
      const moduleOnly = fakeProvider({ noConfig: true });
      const cfgDir = tempDir();
      const withSeparateCfg = fakeProvider({ configDir: cfgDir });
      const r = findFipsProvider({
        env: {},
        systemDirs: [
          { dir: none, source: "openssl version -m" },
          { dir: moduleOnly, source: "system", configDirs: [tempDir()] },
          { dir: withSeparateCfg, source: "snap core22", configDirs: [cfgDir] },
        ],
      });
      assert.equal(r.provider?.source, "snap core22");
      assert.equal(r.provider?.config, path.join(cfgDir, "fipsmodule.cnf"));
      assert.deepEqual(
        r.looked.map((l) => [l.source, l.found]),
        [
          ["openssl version -m", false],
          ["system", false],
          ["snap core22", true],
        ],
      );
      assert.match(r.looked[0].reason, /^no fips\.so$/);
      assert.match(r.looked[1].reason, /fips\.so present but no fipsmodule\.cnf in /);
    });

    it("a configured fipsProviderDir is the only place looked at", () => {
      const good = fakeProvider();
      const configured = tempDir();
      const r = findFipsProvider({ providerDir: configured, env: { OPENSSL_MODULES: good }, systemDirs: [{ dir: good, source: "system" }] });
      assert.equal(r.provider, undefined);
      assert.deepEqual(r.looked.map((l) => l.source), ["configured fipsProviderDir"]);
      assert.equal(findFipsProvider({ providerDir: good, env: {} }).provider?.source, "configured fipsProviderDir");
    });

    it("refuses a fipsmodule.cnf whose module-mac or install-mac does not match, saying which file", () => {
      const dir = fakeProvider();
      const cnf = path.join(dir, "fipsmodule.cnf");
      const original = readFileSync(cnf, "utf8");
      assert.deepEqual(checkProviderIntegrity(path.join(dir, "fips.so"), cnf), { ok: true });

      writeFileSync(cnf, original.replace(/module-mac = (..)/, (_m, b: string) => `module-mac = ${b === "00" ? "01" : "00"}`));
      const mac = checkProviderIntegrity(path.join(dir, "fips.so"), cnf);
      assert.equal(mac.ok, false);
      assert.match((mac as { reason: string }).reason, new RegExp(`integrity check failed: module-mac in ${cnf} does not match ${dir}/fips.so`));
      const r = findFipsProvider({ providerDir: dir, env: {} });
      assert.equal(r.provider, undefined);
      assert.match(r.looked[0].reason, /integrity check failed: module-mac/);

      writeFileSync(cnf, original.replace(/install-mac = (..)/, (_m, b: string) => `install-mac = ${b === "00" ? "01" : "00"}`));
      assert.match((checkProviderIntegrity(path.join(dir, "fips.so"), cnf) as { reason: string }).reason, /install-mac .* does not match its install-status/);
      writeFileSync(cnf, original.replace("INSTALL_SELF_TEST_KATS_RUN", "INSTALL_SELF_TEST_KATS_SKIPPED"));
      assert.match((checkProviderIntegrity(path.join(dir, "fips.so"), cnf) as { reason: string }).reason, /install-status .* expected INSTALL_SELF_TEST_KATS_RUN/);
      writeFileSync(cnf, original.replace("activate = 1", "activate = 0"));
      assert.match((checkProviderIntegrity(path.join(dir, "fips.so"), cnf) as { reason: string }).reason, /does not activate the provider/);
      writeFileSync(cnf, "[other]\nx = 1\n");
      assert.match((checkProviderIntegrity(path.join(dir, "fips.so"), cnf) as { reason: string }).reason, /has no \[fips_sect\] section/);

      // A modified module with the original config fails too.
      writeFileSync(cnf, original);
      writeFileSync(path.join(dir, "fips.so"), Buffer.concat([readFileSync(path.join(dir, "fips.so")), Buffer.from([0])]));
      assert.match((checkProviderIntegrity(path.join(dir, "fips.so"), cnf) as { reason: string }).reason, /module-mac .* does not match/);
    });

    it("the built-in list holds the system OpenSSL's modules dir and snap core paths; NODECERT_FIPS_SYSTEM_DIRS replaces it", function () {
      const dirs = defaultSystemDirs({ env: {} });
      const sources = dirs.map((d) => d.source);
      for (const core of ["core24", "core22", "core20"]) {
        assert.ok(dirs.some((d) => d.source === `snap ${core}` && d.dir.startsWith(`/snap/${core}/current/usr/lib/`) && d.dir.endsWith("/ossl-modules")), core);
      }
      if (sources.includes("openssl version -m")) assert.match(dirs[0].dir, /ossl-modules/);
      assert.ok(dirs.some((d) => d.source === "snap core22" && d.configDirs?.includes("/snap/core22/current/usr/lib/ssl")));
      const replaced = defaultSystemDirs({ env: { [ENV_SYSTEM_DIRS]: "/a:/b" } });
      assert.deepEqual(replaced.map((d) => d.dir), ["/a", "/b"]);
      assert.deepEqual(defaultSystemDirs({ env: { [ENV_SYSTEM_DIRS]: "" } }), []);
      assert.deepEqual(defaultSystemDirs({ env: { SNAP: "/snap/nodecert/x1" }, opensslBin: null })[2], {
        dir: `/snap/nodecert/x1/usr/lib/${multiarchTriplet()}/ossl-modules`,
        source: "$SNAP",
        configDirs: ["/snap/nodecert/x1/usr/lib/ssl", "/snap/nodecert/x1/etc/ssl"],
      });
    });

    it("parses config sections and reads the provider's name and version from the module", () => {
      assert.deepEqual(parseConfigSection("a = 1\n[fips_sect]\nactivate = 1 # on\nmodule-mac = AA:BB\n[x]\ny=2\n", "fips_sect"), { activate: "1", "module-mac": "AA:BB" });
      assert.equal(parseConfigSection("[x]\n", "fips_sect"), undefined);
      const dir = fakeProvider();
      assert.deepEqual(providerIdentity(path.join(dir, "fips.so")), { name: "OpenSSL FIPS Provider", version: "3.0.99" });
      assert.deepEqual(providerIdentity(path.join(dir, "missing.so")), { name: "FIPS provider" });
    });
  });

  describe("mode decision", () => {
    const host = (enabled: boolean) => ({ enabled, path: "/proc/sys/crypto/fips_enabled", reason: enabled ? "/proc/sys/crypto/fips_enabled is 1" : "/proc/sys/crypto/fips_enabled is 0: host not in FIPS mode" });
    it("auto follows the host or a configured provider dir; on always wants FIPS; off never", () => {
      assert.equal(decideMode("auto", host(false)).wantFips, false);
      assert.match(decideMode("auto", host(false)).reason, /fips: auto, .* is 0: host not in FIPS mode and no fipsProviderDir is configured: running on OpenSSL's default provider/);
      assert.equal(decideMode("auto", host(true)).wantFips, true);
      assert.equal(decideMode("auto", host(false), "/opt/fips").wantFips, true);
      assert.match(decideMode("auto", host(false), "/opt/fips").reason, /fipsProviderDir is set \(\/opt\/fips\)/);
      assert.equal(decideMode("on", host(false)).wantFips, true);
      assert.equal(decideMode("off", host(true)).wantFips, false);
    });
  });

  describe("algorithm policy", () => {
    it("allows RSA 2048/3072/4096 and ECDSA P-256/P-384; refuses Ed25519 with a reason", () => {
      for (const a of KEY_ALGORITHMS) {
        const d = fipsKeyAlgorithmDecision(a);
        assert.equal(d.allowed, a !== "Ed25519", a);
      }
      const ed = fipsKeyAlgorithmDecision("Ed25519");
      assert.equal(ed.allowed, false);
      assert.match((ed as { reason: string }).reason, /^FIPS mode: Ed25519 \(EdDSA\) is not an approved signature algorithm.*use ECDSA-P256, ECDSA-P384 or RSA-2048\/3072\/4096/);
      assert.match((fipsKeyAlgorithmDecision("DSA-1024") as { reason: string }).reason, /DSA-1024 is not an approved key algorithm in FIPS mode/);
      assert.throws(() => assertFipsKeyAlgorithm("Ed25519"), /Ed25519/);
      assert.doesNotThrow(() => assertFipsKeyAlgorithm("ECDSA-P384"));
      assert.deepEqual([...FIPS_KEY_ALGORITHMS].sort(), ["ECDSA-P256", "ECDSA-P384", "RSA-2048", "RSA-3072", "RSA-4096"]);
      assert.deepEqual(allowedKeyAlgorithms(true, ["Ed25519", "ECDSA-P256"]), ["ECDSA-P256"]);
      assert.deepEqual(allowedKeyAlgorithms(false, ["Ed25519", "ECDSA-P256"]), ["Ed25519", "ECDSA-P256"]);
    });

    it("allows SHA-256/384 signatures only, and pins TLS 1.3 to the AES-GCM suites (no ChaCha20)", () => {
      assert.equal(fipsSignatureHashDecision("SHA-256").allowed, true);
      assert.equal(fipsSignatureHashDecision("sha384").allowed, true);
      assert.equal(fipsSignatureHashDecision("SHA-1").allowed, false);
      assert.equal(fipsSignatureHashDecision("SHA-512").allowed, false);
      assert.equal(FIPS_TLS13_CIPHERSUITES, "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256");
      assert.deepEqual(tlsCipherOptions(true), { ciphers: FIPS_TLS13_CIPHERSUITES });
      assert.deepEqual(tlsCipherOptions(false), {});
      assert.doesNotMatch(FIPS_TLS13_CIPHERSUITES, /CHACHA/);
    });
  });

  describe("self-test and switching in this (default-provider) process", () => {
    it("the default-mode self-test passes; held to FIPS expectations it fails and says why", async () => {
      assert.equal(getFips(), 0);
      const ok = await runSelfTest({ expectFips: false });
      assert.equal(ok.ok, true, describeSelfTest(ok));
      assert.deepEqual(ok.checks.map((c) => c.name), ["fips-flag", "sha256", "ecdsa-p256", "md5"]);
      const strict = await runSelfTest({ expectFips: true });
      assert.equal(strict.ok, false);
      assert.match(describeSelfTest(strict), /fips-flag: crypto\.getFips\(\) is 0, expected 1/);
      assert.match(describeSelfTest(strict), /md5-refused: MD5 is available/);
    });

    it("off and auto on a non-FIPS host run on the default provider and say so", async () => {
      const off = await ensureCryptoMode("off", { env: {} });
      assert.equal(off.fips, false);
      assert.equal(off.provider.name, "OpenSSL default provider");
      assert.match(off.reason, /fips: off/);
      const auto = await ensureCryptoMode("auto", { procFipsPath: procFile("0"), env: {} });
      assert.equal(auto.fips, false);
      assert.match(auto.reason, /host not in FIPS mode and no fipsProviderDir is configured: running on OpenSSL's default provider/);
      assert.equal(auto.selfTest.ok, true);
      assert.equal(currentCryptoReport(), auto);
      assert.match(formatCryptoLines(cryptoRecord(auto, new Date(), "test"), "-"), /FIPS MODE +no \(fips: auto; host not in FIPS mode\)/);
    });

    it("on (or auto on a FIPS host) without a provider throws, naming every place it looked", async () => {
      const a = tempDir();
      const b = fakeProvider({ noConfig: true });
      const opts = { env: { OPENSSL_MODULES: a, [ENV_SYSTEM_DIRS]: b } };
      await assert.rejects(ensureCryptoMode("on", opts), (e: Error) => {
        assert.ok(e instanceof FipsError);
        assert.match(e.message, /^fips: on: the FIPS provider is required, but no usable OpenSSL FIPS provider was found/);
        assert.match(e.message, new RegExp(`- ${a} \\(OPENSSL_MODULES\\): no fips\\.so`));
        assert.match(e.message, new RegExp(`- ${b} \\(NODECERT_FIPS_SYSTEM_DIRS\\): fips\\.so present but no fipsmodule\\.cnf in ${b}`));
        assert.match(e.message, /Refusing to start\.$/);
        return true;
      });
      await assert.rejects(ensureCryptoMode("auto", { ...opts, procFipsPath: procFile("1") }), /fips: auto and .* is 1: the host kernel runs in FIPS mode, but no usable OpenSSL FIPS provider was found/);
    });
  });

  describe("the re-exec plan", () => {
    it("writes a 0600 nodejs_conf config that includes fipsmodule.cnf, activates fips+base with fips=yes", () => {
      const dir = fakeProvider();
      const stateDir = path.join(tempDir(), "state");
      const provider = { dir, module: path.join(dir, "fips.so"), config: path.join(dir, "fipsmodule.cnf"), source: "configured fipsProviderDir" };
      const host = { enabled: false, path: "/p", reason: "r" };
      const plan = planFipsExec("on", provider, { mode: "on", reason: "why", provider: { name: "OpenSSL FIPS Provider" }, host }, {
        stateDir,
        env: { PATH: "/bin", OPENSSL_CONF: "/etc/ssl/mine.cnf" },
        execPath: "/usr/bin/node",
        execArgv: ["--import", "tsx", "--enable-fips"],
        argv: ["/usr/bin/node", "/x/main.ts", "agent", "--fips", "on"],
      });
      assert.equal(statSync(plan.configFile).mode & 0o777, 0o600);
      assert.equal(statSync(path.dirname(plan.configFile)).mode & 0o777, 0o700);
      assert.ok(plan.configFile.startsWith(stateDir + "/"));
      const text = readFileSync(plan.configFile, "utf8");
      assert.equal(text, fipsOpensslConfig(provider.config));
      assert.match(text, /^nodejs_conf = nodecert_fips_init$/m);
      assert.match(text, new RegExp(`^\\.include ${provider.config}$`, "m"));
      assert.match(text, /^fips = fips_sect$/m);
      assert.match(text, /^base = nodecert_fips_base$/m);
      assert.match(text, /^default_properties = fips=yes$/m);
      assert.deepEqual(plan.args, ["--import", "tsx", "--force-fips", "/x/main.ts", "agent", "--fips", "on"]);
      assert.equal(plan.env.OPENSSL_CONF, plan.configFile);
      assert.equal(plan.env.OPENSSL_MODULES, dir);
      assert.equal(plan.env.PATH, "/bin");
      const marker = JSON.parse(plan.env[FIPS_CHILD_ENV]!);
      assert.deepEqual(marker.restore, { OPENSSL_CONF: "/etc/ssl/mine.cnf", OPENSSL_MODULES: null });
      assert.equal(marker.mode, "on");
      const auto = planFipsExec("auto", provider, { mode: "auto", reason: "why", provider: { name: "x" }, host }, { stateDir, env: {}, execArgv: [], argv: ["node", "main.ts"] });
      assert.deepEqual(auto.args, ["--enable-fips", "main.ts"]);
    });

    it("a fipsmodule.cnf path OpenSSL could misread is copied into the private directory", () => {
      const parent = path.join(tempDir(), "dir with space");
      mkdirSync(parent);
      const dir = fakeProvider({ parent });
      const provider = { dir, module: path.join(dir, "fips.so"), config: path.join(dir, "fipsmodule.cnf"), source: "configured fipsProviderDir" };
      const plan = planFipsExec("on", provider, { mode: "on", reason: "", provider: { name: "x" }, host: { enabled: false, path: "", reason: "" } }, { stateDir: tempDir(), env: {}, execArgv: [], argv: ["n", "m"] });
      const include = /^\.include (.*)$/m.exec(readFileSync(plan.configFile, "utf8"))![1];
      assert.equal(include, path.join(plan.configDir, "fipsmodule.cnf"));
      assert.equal(readFileSync(include, "utf8"), readFileSync(provider.config, "utf8"));
    });
  });

  describe("configuration and CLI", () => {
    it("agent.yaml and server.yaml take fips (auto|on|off, default auto) and fipsProviderDir", () => {
      assert.equal(AgentConfig.parse({}).fips, "auto");
      assert.equal(ServerConfig.parse({}).fips, "auto");
      assert.equal(AgentConfig.parse({ fips: "on", fipsProviderDir: "/opt/fips" }).fipsProviderDir, "/opt/fips");
      assert.equal(ServerConfig.parse({ fips: "off" }).fips, "off");
      assert.equal(AgentConfig.safeParse({ fips: "yes" }).success, false);
      assert.equal(ServerConfig.safeParse({ fips: true }).success, false);
    });

    it("nodecert agent --fips on and server run --fips on refuse to start without a provider, saying where they looked", async function () {
      this.timeout(60_000);
      const empty1 = tempDir();
      const empty2 = tempDir();
      const env = { OPENSSL_MODULES: empty1, [ENV_SYSTEM_DIRS]: empty2 };
      const cfg = path.join(tempDir(), "agent.yaml");
      writeFileSync(cfg, `root: ${tempDir()}\nhealthListen: 127.0.0.1:0\nhooks: []\n`);
      const agent = await nodecert(["agent", "--config", cfg, "--fips", "on"], { env });
      assert.notEqual(agent.code, 0);
      assert.match(agent.stderr, /error: fips: on: the FIPS provider is required, but no usable OpenSSL FIPS provider was found/);
      assert.match(agent.stderr, new RegExp(`- ${empty1} \\(OPENSSL_MODULES\\): no fips\\.so`));
      assert.match(agent.stderr, new RegExp(`- ${empty2} \\(NODECERT_FIPS_SYSTEM_DIRS\\): no fips\\.so`));
      assert.doesNotMatch(agent.stdout, /agent started/, "no work before the crypto mode is settled");

      const dir = path.join(tempDir(), "server");
      const init = await nodecert(["server", "init", "--dir", dir, "--listen", "127.0.0.1:0", "--san", "127.0.0.1"]);
      assert.equal(init.code, 0, init.stderr);
      const server = await nodecert(["server", "run", "--dir", dir, "--fips", "on"], { env });
      assert.notEqual(server.code, 0);
      assert.match(server.stderr, /no usable OpenSSL FIPS provider was found.*Looked in:/s);
      assert.doesNotMatch(server.stdout, /control plane listening/);
      const bad = await nodecert(["server", "run", "--dir", dir, "--fips", "maybe"], { env });
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /invalid configuration.*fips/);
    });
  });
});
