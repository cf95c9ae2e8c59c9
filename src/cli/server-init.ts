// `nodecert server init`: the CA (created or provided), the server's TLS certificate, the admin certificate.
import { existsSync, promises as fs } from "node:fs";
import { randomBytes } from "node:crypto";
import type { CliEnv } from "./env.js";
import { loadYamlConfig } from "../config/load.js";
import { ServerConfig } from "../config/server.js";
import { serverPaths } from "../server/paths.js";
import { ensureCryptoMode, parseFipsMode } from "../crypto/fips-exec.js";

export interface ServerInitOptions {
  dir: string;
  caCert?: string;
  caKey?: string;
  listen?: string;
  san?: string[];
  apiServer?: string;
  fips?: string;
  fipsProviderDir?: string;
  allowLoopbackSans?: boolean;
}

export async function serverInit(env: CliEnv, o: ServerInitOptions): Promise<void> {
  const fips = o.fips === undefined ? undefined : parseFipsMode(o.fips);
  // The CA key is generated on the provider the server will run on.
  const existing = existsSync(serverPaths(o.dir).config) ? loadYamlConfig(ServerConfig, serverPaths(o.dir).config, { fips }) : undefined;
  await ensureCryptoMode(existing?.fips ?? fips ?? "auto", { providerDir: existing?.fipsProviderDir ?? o.fipsProviderDir });
  const { initServer } = await import("../server/init.js");
  const r = await initServer({
    fips,
    fipsProviderDir: o.fipsProviderDir,
    dir: o.dir,
    caCertPem: o.caCert ? await fs.readFile(o.caCert, "utf8") : undefined,
    caKeyPem: o.caKey ? await fs.readFile(o.caKey, "utf8") : undefined,
    listen: o.listen,
    sans: o.san,
    apiServerUrl: o.apiServer,
    allowLoopbackSans: o.allowLoopbackSans,
    now: env.now(),
    random: (n) => randomBytes(n),
  });
  env.stdout.write(
    `${r.createdCa ? "Created" : "Kept existing"} CA in ${r.paths.caDir}\n` +
      `CA pin: ${r.pin}\n\n` +
      `Start the server:  nodecert server run --dir ${r.paths.dir}\n` +
      `Create a token:    nodecert token create --dir ${r.paths.dir}\n` +
      `Join a node:       nodecert join --server ${r.serverUrl} --token <token> --ca-cert-hash ${r.pin}\n`,
  );
}
