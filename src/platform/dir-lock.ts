// An exclusive lock on a directory, shared by every nodecert process on the host (the agent, a
// one-shot `nodecert renew`, `nodecert migrate`): a lock file naming its holder (pid, process
// start time, what it is doing). A holder that died (kill -9, power loss) is detected by its pid
// no longer running that process, so the lock never outlives it and nobody waits for a timeout.
// Within one process, holders of the same lock queue (and a holder may re-enter), so two stores
// on one directory in one process never deadlock.
import { AsyncLocalStorage } from "node:async_hooks";
import { promises as fs, readFileSync } from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { TMP_MARKER } from "./files.js";
import { SerialQueue } from "./serial-queue.js";

export interface LockHolder {
  pid: number;
  /** Start time of the holder process (from /proc), so a reused pid is not mistaken for it. */
  started?: string;
  what: string;
  at: string;
}

export class LockBusyError extends Error {
  readonly code = "locked";
  constructor(
    readonly file: string,
    readonly holder: LockHolder | undefined,
    waitedMs: number,
  ) {
    super(
      holder
        ? `${path.dirname(file)} is locked by another nodecert process (pid ${holder.pid}, ${holder.what}, since ${holder.at}); waited ${Math.round(waitedMs / 1000)}s. Try again when it has finished`
        : `${path.dirname(file)} is locked by another nodecert process; waited ${Math.round(waitedMs / 1000)}s. Try again when it has finished`,
    );
  }
}

export interface LockOptions {
  /** What this process is doing, for the holder record ("agent", "renew", "migrate"). */
  what: string;
  /** How long to wait for another process before giving up with LockBusyError. */
  waitMs: number;
  /** Told once per acquisition that had to wait for another process. */
  onWait?: (holder: LockHolder | undefined) => void;
  /**
   * Errnos for which a lock that cannot be created means nobody can change the directory
   * (EROFS): `fn` then runs without it, and onUnlocked hears why.
   */
  unlockedOn?: string[];
  onUnlocked?: (e: Error) => void;
}

function startTime(pid: number): string | undefined {
  try {
    // Field 22 of /proc/<pid>/stat, after the parenthesised command name (which may hold spaces).
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

function alive(h: LockHolder): boolean {
  try {
    process.kill(h.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ESRCH") return false;
  }
  // Running (or not ours to signal): the same process only if it started when the holder did.
  const started = startTime(h.pid);
  return !(h.started && started && started !== h.started);
}

async function readHolder(file: string): Promise<LockHolder | undefined> {
  try {
    const h = JSON.parse(await fs.readFile(file, "utf8")) as LockHolder;
    return typeof h.pid === "number" ? h : undefined;
  } catch {
    return undefined;
  }
}

const queues = new Map<string, SerialQueue>();
const held = new AsyncLocalStorage<Set<string>>();
const self: Pick<LockHolder, "pid" | "started"> = { pid: process.pid, started: startTime(process.pid) };

/** Runs `fn` holding the lock file `file` (created in an existing directory). */
export function withDirLock<T>(file: string, o: LockOptions, fn: () => Promise<T>): Promise<T> {
  if (held.getStore()?.has(file)) return fn(); // re-entered by the holder
  let q = queues.get(file);
  if (!q) queues.set(file, (q = new SerialQueue()));
  return q.run(async () => {
    let release: () => Promise<void>;
    try {
      release = await acquire(file, o);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (!code || !o.unlockedOn?.includes(code)) throw e;
      o.onUnlocked?.(e as Error);
      // As if held: calls nested in `fn` must re-enter, not queue behind it.
      return held.run(new Set([...(held.getStore() ?? []), file]), fn);
    }
    try {
      return await held.run(new Set([...(held.getStore() ?? []), file]), fn);
    } finally {
      await release();
    }
  });
}

/** Creates `file` holding `me`, whole, or returns false when it exists. */
async function place(file: string, me: LockHolder): Promise<boolean> {
  const tmp = path.join(path.dirname(file), `${TMP_MARKER}${path.basename(file)}.${randomBytes(6).toString("hex")}`);
  for (;;) {
    try {
      await fs.writeFile(tmp, JSON.stringify(me) + "\n", { mode: 0o600 });
    } catch (e) {
      await fs.rm(tmp, { force: true }); // a full disk leaves an empty file behind
      const err = e as NodeJS.ErrnoException;
      throw Object.assign(new Error(`cannot lock ${path.dirname(file)}: ${err.message}`), { code: err.code, cause: e });
    }
    try {
      // Written whole, then linked into place: the file is never seen half-written.
      await fs.link(tmp, file);
      return true;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // ENOENT: a recovering holder swept our temp file away as a leftover; write it again.
      if (code === "ENOENT") continue;
      if (code === "EEXIST") return false;
      throw e;
    } finally {
      await fs.rm(tmp, { force: true });
    }
  }
}

const same = (a: LockHolder | undefined, b: LockHolder) => a?.pid === b.pid && a.at === b.at;

async function acquire(file: string, o: LockOptions): Promise<() => Promise<void>> {
  const me: LockHolder = { ...self, what: o.what, at: new Date().toISOString() };
  // A waiter that has waited once claims the next turn in `<lock>.next`, so a holder that takes
  // the lock again and again (a renewal loop) cannot starve it: others leave the lock to it.
  const next = `${file}.next`;
  let claimed = false;
  const started = Date.now();
  let told = false;
  const unclaim = async () => {
    if (claimed && same(await readHolder(next), me)) await fs.rm(next, { force: true });
    claimed = false;
  };
  for (let pause = 5; ; pause = Math.min(pause * 2, 50)) {
    const turn = claimed ? undefined : await readHolder(next);
    const yielding = turn !== undefined && alive(turn);
    if (turn && !yielding) await takeOver(next, turn);
    if (!yielding && (await place(file, me))) {
      await unclaim();
      return async () => {
        // Only our own lock is removed (a holder judged dead by mistake cannot free a live one's).
        if (same(await readHolder(file), me)) await fs.rm(file, { force: true });
      };
    }
    const holder = await readHolder(file);
    if (!yielding && holder && !alive(holder)) {
      await takeOver(file, holder);
      continue;
    }
    const waited = Date.now() - started;
    if (waited >= o.waitMs) {
      await unclaim();
      throw new LockBusyError(file, holder ?? turn, waited);
    }
    if (!told) {
      told = true;
      o.onWait?.(holder ?? turn);
    }
    if (!claimed && !yielding) claimed = await place(next, me);
    await sleep(pause);
  }
}

/** Removes the lock of a dead holder, unless someone else's live lock took its place meanwhile. */
async function takeOver(file: string, dead: LockHolder): Promise<void> {
  const aside = path.join(path.dirname(file), `${TMP_MARKER}${path.basename(file)}.stale-${randomBytes(6).toString("hex")}`);
  try {
    await fs.rename(file, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    throw e;
  }
  const moved = await readHolder(aside);
  if (moved && (moved.pid !== dead.pid || moved.at !== dead.at)) {
    // A live holder's lock was moved by this race: put it back (fails only if a third took the lock).
    await fs.link(aside, file).catch(() => undefined);
  }
  await fs.rm(aside, { force: true });
}
