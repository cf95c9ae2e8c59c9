// The node's files and the agent's state have one owner: this store. It alone reads and writes
// state.json, the pending install plan, the timestamped pairs and their -current links, ca.crt,
// kubelet.conf and the last-error record, prunes old pairs and recovers after a crash. Every
// change runs under an exclusive lock on the state directory, which every nodecert process
// respects (the agent, a one-shot `nodecert renew`, `nodecert migrate`, a second agent): it waits
// a bounded time for the holder, then fails with a LockBusyError (code "locked") naming it.
// The lower-level modules (state, apply, install, recover, prune) are this store's implementation;
// nothing else in src/ imports them for I/O (eslint enforces it).
import { promises as fs } from "node:fs";
import path from "node:path";
import type { CertKind } from "../pki/csr.js";
import type { Logger } from "../platform/log.js";
import { ensureDir } from "../platform/files.js";
import { withDirLock, type LockHolder } from "../platform/dir-lock.js";
import { AgentError, codeForErrno } from "./errors.js";
import type { NodeLayout } from "./layout.js";
import { applyInstall, type InstallPlan } from "./apply.js";
import { installTrustBundle, readCurrentOutcome, type CurrentRead } from "./install.js";
import { pruneOld } from "./prune.js";
import { recoverOnStartup } from "./recover.js";
import { clearJoinError, migrateStateFile, readLastError, readState, recordLastError, writeState, type AgentState, type LastError } from "./state.js";

export type { AgentState, InstallPlan, LastError, CurrentRead };

export interface NodeStoreOptions {
  /** What this process is, for the lock record and contention messages ("agent", "renew"...). */
  what: string;
  /** How long a change waits for another process's lock (default 30 s). */
  lockWaitMs?: number;
  logger?: Logger;
}

export const LOCK_FILE = ".lock";
/** A lock file that cannot be written for these reasons cannot be written by anyone else either. */
const UNLOCKABLE = ["EROFS", "ENOSPC", "EDQUOT"];

export class NodeStore {
  constructor(
    readonly layout: NodeLayout,
    private readonly o: NodeStoreOptions,
  ) {}

  /** Runs `fn` holding the state directory's lock (re-entrant within this process). */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    try {
      await ensureDir(this.layout.stateDir, 0o700);
    } catch (e) {
      // A read-only root (a degraded start): no process can change the files, so there is
      // nothing to lock against; `fn` runs and meets the same error if it tries to write.
      if ((e as NodeJS.ErrnoException).code !== "EROFS") throw e;
      this.unlocked(e as Error);
      return fn();
    }
    const file = path.join(this.layout.stateDir, LOCK_FILE);
    return withDirLock(file, { what: this.o.what, waitMs: this.o.lockWaitMs ?? 30_000, onWait: (h) => this.contended(h), unlockedOn: UNLOCKABLE, onUnlocked: (e) => this.unlocked(e) }, fn);
  }

  private unlocked(e: Error): void {
    this.o.logger?.debug("the state directory cannot take a lock file; going on without it", { stateDir: this.layout.stateDir, error: e.message });
  }

  private contended(h: LockHolder | undefined): void {
    this.o.logger?.warn("waiting for another nodecert process to finish with the node's files", { holderPid: h?.pid, holder: h?.what, since: h?.at, stateDir: this.layout.stateDir });
  }

  // ---- state.json

  /** The state as on disk (atomic writes: never half-written), or undefined before the first join. */
  read(): Promise<AgentState | undefined> {
    return readState(this.layout);
  }

  /** The state, or undefined when there is none or it cannot be read; the failure is logged with its reason. */
  async readOrUndefined(why: string): Promise<AgentState | undefined> {
    try {
      return await this.read();
    } catch (e) {
      this.o.logger?.warn(`cannot read the agent state (${why})`, { file: this.layout.stateFile, error: (e as Error).message });
      return undefined;
    }
  }

  /**
   * Read-modify-write of state.json under the lock: `fn` sees the state as it is now (never a
   * copy read before another process wrote) and returns the new one, or undefined to leave it.
   */
  update(fn: (s: AgentState | undefined) => AgentState | undefined | Promise<AgentState | undefined>): Promise<AgentState | undefined> {
    return this.exclusive(async () => {
      const cur = await this.read();
      const next = await fn(cur);
      if (next && next !== cur) await writeState(this.layout, next);
      return next ?? cur;
    });
  }

  migrate(): Promise<string[]> {
    return this.exclusive(() => migrateStateFile(this.layout));
  }

  // ---- the last error (kept in state.json, or beside it before the first join)

  recordLastError(e: LastError): Promise<void> {
    return this.exclusive(() => recordLastError(this.layout, e));
  }

  readLastError(): Promise<LastError | undefined> {
    return readLastError(this.layout);
  }

  clearJoinError(): Promise<void> {
    return this.exclusive(() => clearJoinError(this.layout));
  }

  // ---- certificates and trust

  /** <kind>-current.pem: present, missing, or unreadable with a code (permission-denied, ...). */
  async readCurrent(kind: CertKind): Promise<CurrentRead & { code?: string }> {
    const r = await readCurrentOutcome(this.layout, kind);
    return r.state === "unreadable" ? { ...r, code: codeForErrno(r.errno) } : r;
  }

  /** <kind>-current.pem, undefined when missing; throws an AgentError with a code otherwise. */
  async readCurrentPem(kind: CertKind): Promise<string | undefined> {
    const r = await this.readCurrent(kind);
    if (r.state === "unreadable") throw new AgentError(codeForErrno(r.errno) , r.reason);
    return r.state === "present" ? r.pem : undefined;
  }

  /** ca.crt, or undefined when none is installed; other failures throw with a code. */
  async readTrustBundle(): Promise<string | undefined> {
    try {
      return await fs.readFile(this.layout.caFile, "utf8");
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === "ENOENT") return undefined;
      throw new AgentError(codeForErrno(err.code), `cannot read ${this.layout.caFile}: ${err.message}`, { cause: e });
    }
  }

  installTrustBundle(bundlePem: string): Promise<void> {
    return this.exclusive(() => installTrustBundle(this.layout, bundlePem));
  }

  /** Writes the plan, then the pairs, links, ca.crt, kubelet.conf and state: crash-safe, under the lock. */
  install(plan: InstallPlan, now: Date): Promise<AgentState> {
    return this.exclusive(() => applyInstall(this.layout, plan, now));
  }

  /** Removes old timestamped pairs beyond `keep` (never the current one). Returns what went. */
  prune(kind: CertKind, keep: number): Promise<string[]> {
    return this.exclusive(() => pruneOld(this.layout, kind, keep));
  }

  /** Startup: finishes an interrupted install, drops temp files, repairs broken -current links. */
  recover(now: Date): Promise<string[]> {
    return this.exclusive(() => recoverOnStartup(this.layout, now));
  }

  /** Records an eviction (once). */
  async markEvicted(at: Date, reason: string): Promise<void> {
    await this.update((s) => (s && !s.evicted ? { ...s, evicted: { at: at.toISOString(), reason } } : undefined));
  }
}
