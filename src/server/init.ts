// `nodecert server init`: CA, server TLS certificate, admin client certificate, config. Idempotent.
import { existsSync, promises as fs } from "node:fs";
import YAML from "yaml";
import { createPrivateKey } from "node:crypto";
import { describeKeyObject } from "../pki/key-algorithms.js";
import { assertKeyAlgorithmAllowed } from "../crypto/process.js";
import type { RandomBytes } from "../pki/certificate.js";
import { ensureCa, ensureKek, loadCa } from "./ca/ca.js";
import { serverPaths, type ServerPaths } from "./paths.js";
import { issueServiceCert, serviceCerts } from "./ca/service-certs.js";
import { SqliteStore } from "./store/sqlite.js";
import { ensureDir, writeFileAtomic } from "../platform/files.js";
import { loadYamlConfig } from "../config/load.js";
import { ServerConfig, parseListen } from "../config/server.js";

export interface InitOptions {
  dir: string;
  caCertPem?: string;
  caKeyPem?: string;
  /** Written into a new server.yaml; ignored if one exists. */
  listen?: string;
  sans?: string[];
  apiServerUrl?: string;
  /** Crypto provider settings written into a new server.yaml. */
  fips?: "auto" | "on" | "off";
  fipsProviderDir?: string;
  /** Written into a new server.yaml as policy.allowLoopbackSans (one-host setups, tests). */
  allowLoopbackSans?: boolean;
  now: Date;
  random: RandomBytes;
}

export interface InitResult {
  paths: ServerPaths;
  pin: string;
  createdCa: boolean;
  serverUrl: string;
}

export async function initServer(o: InitOptions): Promise<InitResult> {
  const paths = serverPaths(o.dir);
  await ensureDir(paths.dir, 0o700);
  if (!existsSync(paths.config)) {
    const cfg: Record<string, unknown> = {};
    if (o.listen) cfg.listen = o.listen;
    if (o.sans) cfg.sans = o.sans;
    if (o.apiServerUrl) cfg.apiServerUrl = o.apiServerUrl;
    if (o.fips) cfg.fips = o.fips;
    if (o.fipsProviderDir) cfg.fipsProviderDir = o.fipsProviderDir;
    if (o.allowLoopbackSans) cfg.policy = { allowLoopbackSans: true };
    await writeFileAtomic(paths.config, YAML.stringify(cfg), 0o600);
  }
  const config = loadYamlConfig(ServerConfig, paths.config);
  if (o.caKeyPem) {
    // A provided CA must be usable in this process's mode (an Ed25519 CA cannot sign in FIPS mode).
    // An unparsable key is left to ensureCa, which explains what is wrong with it.
    let key: ReturnType<typeof describeKeyObject> | undefined;
    try {
      key = describeKeyObject(createPrivateKey(o.caKeyPem));
    } catch {
      key = undefined;
    }
    if (key) {
      try {
        assertKeyAlgorithmAllowed(key.algorithm ?? key.description);
      } catch (e) {
        throw new Error(`the provided CA key (${key.description}) cannot be used: ${(e as Error).message}`, { cause: e });
      }
    }
  }
  const kek = await ensureKek(paths, o.random);
  const createdCa = await ensureCa(paths, kek, { providedCertPem: o.caCertPem, providedKeyPem: o.caKeyPem, now: o.now, random: o.random });
  if (!createdCa && (o.caCertPem || o.caKeyPem)) {
    throw new Error(`${paths.dir} already holds a CA; refusing to replace it (CA rotation is 'nodecert ca rotate')`);
  }
  const ca = await loadCa(paths, kek);
  const store = new SqliteStore(paths.db);
  try {
    // Existing ones are kept: the running server renews them (ServiceCertRenewal).
    for (const svc of serviceCerts(paths, config.sans)) {
      if (!existsSync(svc.certFile) || !existsSync(svc.keyFile)) await issueServiceCert(ca, svc, { store, now: o.now, random: o.random });
    }
    const { host, port } = parseListen(config.listen);
    const urlHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
    const serverUrl = `https://${urlHost}:${port}`;
    await writeFileAtomic(paths.adminCa, ca.bundlePem, 0o600);
    if (!existsSync(paths.adminServerUrl)) await writeFileAtomic(paths.adminServerUrl, serverUrl + "\n", 0o600);
    return { paths, pin: ca.pin, createdCa, serverUrl: (await fs.readFile(paths.adminServerUrl, "utf8")).trim() };
  } finally {
    await store.close();
  }
}
