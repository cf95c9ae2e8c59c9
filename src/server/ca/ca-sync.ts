// Replicas on one etcd prefix share one CA. Its files (the certificates, the AES-256-GCM sealed key:
// never the key-encryption key, which each replica reads from its own file or LoadCredential=) and
// the CA-rotation state live in etcd as one snapshot; each replica's ca/, ca-next/ and ca-old-*/
// directories are a local copy of it. The replica that changes the CA (a rotation step) publishes
// a new snapshot by compare-and-swap; every other replica watches the key, writes the files and
// reloads its signer.
import { promises as fs, existsSync } from "node:fs";
import path from "node:path";
import type { Watcher } from "etcd3";
import type { EtcdStore } from "../store/etcd.js";
import type { ServerPaths } from "../paths.js";
import type { Logger } from "../../platform/log.js";
import { ensureDir, writeFileAtomic } from "../../platform/files.js";

export const CA_SNAPSHOT_KEY = "kv/ca-files";

export interface CaSnapshot {
  /** Increases with every published change. */
  version: number;
  /** Who published it (a replica name). */
  by: string;
  /** Server-dir-relative path → content and mode. */
  files: Record<string, { content: string; mode: number }>;
  /** The CA-rotation state at the time (the reload needs phase and files to agree). */
  rotation?: unknown;
}

const CA_DIR = /^(ca|ca-next|ca-old-[A-Za-z0-9._-]+)$/;

/** The CA directories of a server dir as a snapshot's files. */
export async function readCaFiles(paths: ServerPaths): Promise<CaSnapshot["files"]> {
  const files: CaSnapshot["files"] = {};
  for (const d of (await fs.readdir(paths.dir, { withFileTypes: true })).filter((e) => e.isDirectory() && CA_DIR.test(e.name)).map((e) => e.name).sort()) {
    for (const f of (await fs.readdir(path.join(paths.dir, d), { withFileTypes: true })).filter((e) => e.isFile() && !e.name.includes(".nodecert-tmp-")).map((e) => e.name).sort()) {
      const full = path.join(paths.dir, d, f);
      files[`${d}/${f}`] = { content: await fs.readFile(full, "utf8"), mode: (await fs.stat(full)).mode & 0o777 };
    }
  }
  return files;
}

/** Makes the local CA directories exactly the snapshot's (files written atomically, then extra dirs removed). */
export async function writeCaFiles(paths: ServerPaths, files: CaSnapshot["files"]): Promise<void> {
  const dirs = new Set(Object.keys(files).map((f) => f.split("/")[0]));
  for (const [rel, f] of Object.entries(files)) {
    const [d, name] = rel.split("/");
    if (!CA_DIR.test(d) || !name || name.includes("/") || name.startsWith(".")) throw new Error(`refusing a CA snapshot entry outside the CA directories: ${rel}`);
    await ensureDir(path.join(paths.dir, d), 0o700);
    const full = path.join(paths.dir, d, name);
    if ((await fs.readFile(full, "utf8").catch(() => undefined)) !== f.content) await writeFileAtomic(full, f.content, f.mode & 0o666);
  }
  for (const e of await fs.readdir(paths.dir, { withFileTypes: true })) {
    if (e.isDirectory() && CA_DIR.test(e.name) && !dirs.has(e.name)) await fs.rm(path.join(paths.dir, e.name), { recursive: true, force: true });
  }
  // Files of a kept directory that the snapshot no longer has (e.g. cross.crt moved on finish).
  for (const d of dirs) {
    for (const f of await fs.readdir(path.join(paths.dir, d))) if (!(`${d}/${f}` in files)) await fs.rm(path.join(paths.dir, d, f), { force: true });
  }
}

export class CaSync {
  private version = 0;
  private watcher: Watcher | undefined;

  constructor(private readonly d: { store: EtcdStore; paths: ServerPaths; logger: Logger; replica: string; /** How long a CA change waits for the other replicas to apply it. */ barrierMs?: number }) {}

  /**
   * At start, before the CA is loaded: a CA in etcd wins (this replica's files from `server init`
   * are replaced, kept aside once as ca-local-<time>/); with none there, this replica's CA is
   * published (create-if-absent, so of two first replicas one CA wins and the other adopts it).
   */
  async adoptOrPublish(now: Date): Promise<"adopted" | "published" | "current"> {
    const files = await readCaFiles(this.d.paths);
    const first: CaSnapshot = { version: 1, by: this.d.replica, files };
    const created = await this.d.store.casKv("ca-files", undefined, first);
    if (created) {
      this.version = 1;
      await this.ack(1);
      this.d.logger.info("published this replica's CA to etcd: other replicas adopt it", { replica: this.d.replica });
      return "published";
    }
    const snap = (await this.d.store.getKv<CaSnapshot>("ca-files"))!;
    this.version = snap.version;
    await this.ack(snap.version);
    if (JSON.stringify(snap.files) === JSON.stringify(files)) return "current";
    const ca = path.join(this.d.paths.dir, "ca");
    if (existsSync(ca)) {
      const aside = path.join(this.d.paths.dir, `ca-local-${now.getTime()}`);
      await fs.cp(ca, aside, { recursive: true });
      this.d.logger.warn("this replica's own CA differs from the one in etcd: using etcd's (the shared one), keeping the local one aside", { aside });
    }
    await writeCaFiles(this.d.paths, snap.files);
    return "adopted";
  }

  /** After this replica changed the CA files or rotation state: publish them (compare-and-swap on the version). */
  async publish(rotation: unknown): Promise<void> {
    for (let i = 0; i < 10; i++) {
      const cur = await this.d.store.getKv<CaSnapshot>("ca-files");
      const next: CaSnapshot = { version: (cur?.version ?? 0) + 1, by: this.d.replica, files: await readCaFiles(this.d.paths), rotation };
      if (await this.d.store.casKv("ca-files", cur, next)) {
        this.version = next.version;
        await this.ack(next.version);
        await this.awaitReplicas(next.version);
        return;
      }
    }
    throw new Error("could not publish the CA to etcd: another replica kept changing it; retry the CA command");
  }

  private async ack(version: number): Promise<void> {
    await this.d.store.ns.put(`ca-acks/${this.d.replica}`).value(String(version)).exec();
  }

  /**
   * Waits until every live replica (registered under replicas/) has applied `version`, so a phase
   * that follows (the switch's re-issue campaign) never reaches a node through a replica that
   * still signs with the old CA. Bounded: a replica that does not answer is logged, not waited for.
   */
  async awaitReplicas(version: number, timeoutMs = this.d.barrierMs ?? 20_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const live = (await this.d.store.ns.getAll().prefix("replicas/").keys()).map((k) => k.slice("replicas/".length));
      const acks = await this.d.store.ns.getAll().prefix("ca-acks/").strings();
      const behind = live.filter((r) => Number(acks[`ca-acks/${r}`] ?? 0) < version);
      if (!behind.length) return;
      if (Date.now() > end) {
        this.d.logger.warn("CA change: replicas did not confirm it in time; going on without them", { version, behind });
        return;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Calls `onChange` (after writing the files) whenever another replica publishes a CA change. */
  async watch(onChange: (snap: CaSnapshot) => Promise<void>): Promise<void> {
    this.watcher = await this.d.store.ns.watch().key(CA_SNAPSHOT_KEY).create();
    let chain: Promise<void> = Promise.resolve();
    this.watcher.on("put", (kv) => {
      const snap = JSON.parse(kv.value.toString()) as CaSnapshot;
      chain = chain.then(async () => {
        if (snap.version <= this.version) return; // ours, or older
        this.version = snap.version;
        await writeCaFiles(this.d.paths, snap.files);
        await onChange(snap);
        await this.ack(snap.version);
        this.d.logger.info("reloaded the CA another replica changed", { version: snap.version, by: snap.by });
      }).catch((e) => this.d.logger.error("could not apply the CA another replica changed", { error: (e as Error).message }));
    });
    this.watcher.on("error", (e) => this.d.logger.warn("CA watch on etcd failed; it reconnects", { error: (e as Error).message }));
  }

  async close(): Promise<void> {
    await this.watcher?.cancel().catch(() => undefined);
  }
}
