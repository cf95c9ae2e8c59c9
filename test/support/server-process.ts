// The control plane as its own process (`bin/nodecert server run`), for tests that kill it with
// SIGKILL, limit its open files with prlimit, or read its memory from /proc.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { initServer } from "../../src/server/init.js";
import { serverPaths } from "../../src/server/paths.js";
import { SqliteStore } from "../../src/server/store/sqlite.js";
import { generateToken, hashSecret, parseToken } from "../../src/server/tokens.js";
import { BIN, freePort, random, tempDir } from "./helpers.js";
import { until } from "./fleet.js";

export interface ServerProcess {
  dir: string;
  port: number;
  url: string;
  pin: string;
  /** The CA bundle clients trust (read from disk: it changes during a CA rotation). */
  trustBundle(): string;
  /** The node process serving (bin/nodecert execs node, so this is its pid). */
  pid(): number;
  logs(): string;
  /** The /metrics URL of the running process (from its "metrics listening" log line). */
  metricsUrl(): string | undefined;
  /** Starts it (again) on the same directory and port; resolves once it listens. */
  start(): Promise<void>;
  /** SIGKILL, then waits for the exit. */
  kill(): Promise<void>;
  stop(): Promise<void>;
  /** Adds a bootstrap token straight to its database (SQLite takes a second writer). */
  createToken(o?: { uses?: number; node?: string }): Promise<string>;
}

export async function serverProcess(o: { config?: Record<string, unknown>; prlimitNofile?: number; sans?: string[]; /** Replicas: the key-encryption key they share. */ kek?: Buffer } = {}): Promise<ServerProcess> {
  const dir = path.join(tempDir(), "server");
  if (o.kek) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(path.join(dir, "kek"), o.kek, { mode: 0o600 });
  }
  const port = await freePort();
  // Agents here join over loopback, so their serving certificates hold 127.0.0.1 (as startServer allows).
  const init = await initServer({ dir, listen: `127.0.0.1:${port}`, sans: o.sans ?? ["localhost", "127.0.0.1"], allowLoopbackSans: true, now: new Date(), random });
  const paths = serverPaths(dir);
  {
    // /metrics on a free port (announced in the "metrics listening" log line, see metricsUrl()).
    const current = (YAML.parse(readFileSync(paths.config, "utf8")) as Record<string, unknown>) ?? {};
    writeFileSync(paths.config, YAML.stringify({ ...current, metrics: { listen: "127.0.0.1:0" }, ...(o.config ?? {}) }), { mode: 0o600 });
  }
  let child: ChildProcess | undefined;
  let out = "";
  let exited: Promise<void> = Promise.resolve();
  const url = `https://127.0.0.1:${port}`;
  const self: ServerProcess = {
    dir,
    port,
    url,
    pin: init.pin,
    trustBundle: () => readFileSync(paths.adminCa, "utf8"),
    pid: () => child?.pid ?? 0,
    logs: () => out,
    metricsUrl: () => {
      const lines = out.split("\n").filter((l) => l.includes('"message":"metrics listening"'));
      return lines.length ? `http://${(JSON.parse(lines[lines.length - 1]) as { listen: string }).listen}/metrics` : undefined;
    },
    async start() {
      const args = ["server", "run", "--dir", dir];
      const [cmd, argv] = o.prlimitNofile ? ["prlimit", [`--nofile=${o.prlimitNofile}:${o.prlimitNofile}`, "--", BIN, ...args]] : [BIN, args];
      // prlimit execs its command and bin/nodecert execs node: the pid stays the server's.
      const from = out.length;
      const c = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"] });
      child = c;
      c.stdout!.on("data", (d) => (out += d));
      c.stderr!.on("data", (d) => (out += d));
      exited = new Promise((r) => c.once("exit", () => r()));
      let gone = false;
      void exited.then(() => (gone = true));
      await until("the server listening", () => {
        if (gone) throw new Error(`the server exited before it listened:\n${out.slice(-3000)}`);
        return out.slice(from).includes('"control plane listening"');
      }, 60_000);
    },
    async kill() {
      child?.kill("SIGKILL");
      await exited;
    },
    async stop() {
      child?.kill("SIGTERM");
      await exited;
    },
    async createToken(t = {}) {
      const token = generateToken(random);
      const { id, secret } = parseToken(token)!;
      // A replica's state is in etcd (as server.yaml says), any other server's in its SQLite file.
      const storeCfg = o.config?.store as { kind?: string; endpoints: string[]; prefix: string; tls: { ca: string; cert: string; key: string } } | undefined;
      const store = storeCfg?.kind === "etcd" ? new (await import("../../src/server/store/etcd.js")).EtcdStore({ endpoints: storeCfg.endpoints, prefix: storeCfg.prefix, tls: storeCfg.tls }) : new SqliteStore(paths.db);
      try {
        const now = new Date();
        await store.insertToken({ id, secretHash: hashSecret(secret), node: t.node, usesLeft: t.uses ?? 1, expiresAt: new Date(now.getTime() + 3_600_000), createdAt: now });
      } finally {
        await store.close();
      }
      return token;
    },
  };
  return self;
}
