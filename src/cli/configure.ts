// `nodecert configure`: writes a validated agent.yaml (and the token file). Used by the snap's
// configure hook and by installers. Nothing is written unless every value is valid, so a bad
// `snap set` leaves the previous configuration in place.
import type { CliEnv } from "./env.js";
import path from "node:path";
import { existsSync, readFileSync } from "node:fs";
import YAML from "yaml";
import { AgentConfig } from "../config/agent.js";
import { describeZodError } from "../protocol/messages.js";
import { normalizePin } from "../pki/pin.js";
import { TOKEN_RE } from "../protocol/token.js";
import { readBootstrapToken } from "../agent/token-source.js";
import { ensureDir, writeFileAtomic } from "../platform/files.js";

export interface ConfigureOptions {
  out: string;
  server?: string;
  token?: string;
  tokenFile?: string;
  caCertHash?: string;
  fips?: string;
  nodeName?: string;
  root?: string;
  stateDir?: string;
}

export async function configure(env: CliEnv, o: ConfigureOptions): Promise<void> {
  const problems: string[] = [];
  // The token goes to --token-file, so it is read here from the command line or stdin only.
  if (o.token !== undefined) o.token = await readBootstrapToken({ token: o.token });
  let base: Record<string, unknown> = {};
  if (existsSync(o.out)) {
    try {
      base = (YAML.parse(readFileSync(o.out, "utf8")) as Record<string, unknown>) ?? {};
    } catch (e) {
      problems.push(`the existing ${o.out} is not valid YAML (${(e as Error).message})`);
    }
  }
  const next: Record<string, unknown> = { ...base };
  const set = (k: string, v: string | undefined) => {
    if (v === undefined) return;
    if (v === "") delete next[k];
    else next[k] = v;
  };
  if (o.server !== undefined && o.server !== "") {
    try {
      if (new URL(o.server).protocol !== "https:") problems.push(`server "${o.server}" must be an https:// URL`);
    } catch {
      problems.push(`server "${o.server}" is not a URL (expected https://host:port)`);
    }
  }
  let pin = o.caCertHash;
  if (pin) {
    try {
      pin = normalizePin(pin);
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  if (o.token && !TOKEN_RE.test(o.token)) problems.push(`token does not look like a bootstrap token (abcdef.0123456789abcdef)`);
  if (o.fips !== undefined && o.fips !== "" && !["auto", "on", "off"].includes(o.fips)) problems.push(`fips "${o.fips}" must be auto, on or off`);
  set("server", o.server);
  set("caCertHash", pin);
  set("fips", o.fips);
  set("nodeName", o.nodeName);
  set("root", o.root);
  set("stateDir", o.stateDir);
  const tokenFile = o.tokenFile ?? (next.tokenFile as string | undefined) ?? path.join(path.dirname(path.resolve(o.out)), "token");
  if (o.token) next.tokenFile = tokenFile;
  const parsed = AgentConfig.safeParse(next);
  if (!parsed.success) problems.push(describeZodError(parsed.error));
  if (problems.length) throw new Error(`configuration not changed: ${problems.join("; ")}`);
  await ensureDir(path.dirname(path.resolve(o.out)), 0o700);
  if (o.token) await writeFileAtomic(tokenFile, o.token + "\n", 0o600);
  await writeFileAtomic(o.out, YAML.stringify(next), 0o600);
  env.stdout.write(`wrote ${o.out}\n`);
}
