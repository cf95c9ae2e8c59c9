// Where a command gets the bootstrap token from, without putting it where other users can read
// it. A process's argv is world-readable (`ps`, /proc/<pid>/cmdline) for as long as it runs; its
// environment (/proc/<pid>/environ) and stdin are not. So: --token-file F (0600), --token - (the
// token on stdin), or NODECERT_TOKEN. A literal --token T still works, with a warning, and is
// scrubbed from the command line as soon as this code runs (it was visible until then).
import { promises as fs } from "node:fs";

export const TOKEN_ENV = "NODECERT_TOKEN";

export interface TokenOptions {
  /** A literal token, or "-" for stdin. */
  token?: string;
  tokenFile?: string;
}

export interface TokenSourceDeps {
  env?: NodeJS.ProcessEnv;
  argv?: string[];
  stdin?: NodeJS.ReadableStream;
  warn?: (message: string) => void;
  /** Sets what `ps` shows for this process (default: process.title, which overwrites argv on Linux). */
  setTitle?: (title: string) => void;
}

export class TokenSourceError extends Error {}

const HOW = `give it with --token-file FILE (mode 0600), --token - (read from stdin) or the ${TOKEN_ENV} environment variable`;

/**
 * Call first in a command that takes a token: a literal `--token T` is warned about, moved into
 * this process's environment (so a FIPS re-exec of the process does not carry it in argv again)
 * and removed from the command line `ps` shows. Changes `argv` in place.
 */
export function protectTokenArgument(o: TokenOptions, d: TokenSourceDeps = {}): void {
  if (o.token !== undefined && o.tokenFile !== undefined) throw new TokenSourceError(`give the bootstrap token once: --token or --token-file, not both`);
  if (o.token === undefined || o.token === "-") return;
  const env = d.env ?? process.env;
  const argv = d.argv ?? process.argv;
  (d.warn ?? ((m) => process.stderr.write(`warning: ${m}\n`)))(
    `--token on the command line can be read by every local user (ps, /proc/<pid>/cmdline) while the command runs; ${HOW}`,
  );
  env[TOKEN_ENV] = o.token;
  for (let i = argv.length - 1; i >= 2; i--) {
    if (argv[i] === "--token" && argv[i + 1] === o.token) argv.splice(i, 2);
    else if (argv[i] === `--token=${o.token}`) argv.splice(i, 1);
  }
  o.token = undefined;
  (d.setTitle ?? ((t) => (process.title = t)))(["nodecert", ...argv.slice(2)].join(" "));
}

/** The token from exactly one source: --token -, --token-file, a literal moved aside, or the environment. */
export async function readBootstrapToken(o: TokenOptions, d: TokenSourceDeps = {}): Promise<string> {
  const env = d.env ?? process.env;
  let token: string;
  let from: string;
  if (o.token !== undefined && o.tokenFile !== undefined) throw new TokenSourceError(`give the bootstrap token once: --token or --token-file, not both`);
  if (o.token === "-") {
    token = await readAll(d.stdin ?? process.stdin);
    from = "stdin";
  } else if (o.token !== undefined) {
    token = o.token;
    from = "--token";
  } else if (o.tokenFile !== undefined) {
    try {
      token = await fs.readFile(o.tokenFile, "utf8");
    } catch (e) {
      throw new TokenSourceError(`cannot read the bootstrap token from ${o.tokenFile}: ${(e as Error).message}`);
    }
    from = o.tokenFile;
  } else if (env[TOKEN_ENV] !== undefined) {
    token = env[TOKEN_ENV]!;
    from = TOKEN_ENV;
  } else {
    throw new TokenSourceError(`no bootstrap token: ${HOW}`);
  }
  token = token.trim();
  if (!token) throw new TokenSourceError(`the bootstrap token from ${from} is empty`);
  return token;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let out = "";
  for await (const chunk of stream) {
    out += chunk.toString();
    if (out.length > 4096) throw new TokenSourceError("stdin holds more than a bootstrap token");
  }
  return out;
}
