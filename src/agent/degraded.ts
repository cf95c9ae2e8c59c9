// A root the agent cannot write to (read-only, or full) at start: the agent stays up, not ready,
// with the reason on /readyz and in systemd's STATUS=, while the kubelet keeps using the installed
// files; it probes again with backoff and resumes as soon as the disk takes writes.
import { promises as fs } from "node:fs";
import path from "node:path";
import type { NodeLayout } from "./layout.js";
import type { Logger } from "../platform/log.js";
import { backoffDelay } from "../platform/backoff.js";
import { ensureDir, TMP_MARKER } from "../platform/files.js";

/** Can every directory the agent installs into take a small write? The reason when not. */
export async function unwritableReason(layout: NodeLayout): Promise<string | undefined> {
  for (const dir of [layout.stateDir, layout.pkiDir, layout.kubernetesPkiDir]) {
    try {
      if (dir === layout.stateDir) await ensureDir(dir, 0o700);
      else await fs.access(dir).catch(() => fs.mkdir(dir, { recursive: true, mode: 0o700 }));
      // Enough bytes to need a block: a full disk often still has inodes for an empty file.
      const probe = path.join(dir, `${TMP_MARKER}write-probe-${process.pid}`);
      try {
        await fs.writeFile(probe, Buffer.alloc(8192), { mode: 0o600 });
      } finally {
        await fs.rm(probe, { force: true }).catch(() => undefined);
      }
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      const what = err.code === "EROFS" ? "the filesystem is read-only" : err.code === "ENOSPC" || err.code === "EDQUOT" ? "the disk is full" : (err.code ?? "write failed");
      return `cannot write to ${dir} (${what}: ${err.message})`;
    }
  }
  return undefined;
}

export interface DegradedDeps {
  layout: NodeLayout;
  logger: Logger;
  clock: () => Date;
  random: () => number;
  setTimer: (fn: () => void, ms: number) => { cancel(): void };
  backoff: { initial: number; max: number };
  /** Runs once the root takes writes again (the daemon's check). */
  onRecovered: () => void;
}

export class DegradedStart {
  private why: string | undefined;
  private attempts = 0;
  private timer: { cancel(): void } | undefined;
  private stopped = false;
  /** When the next probe runs, while degraded. */
  nextProbeAt: Date | undefined;

  constructor(private d: DegradedDeps) {}

  /** Why the agent is degraded (undefined when it is not). */
  get reason(): string | undefined {
    return this.why && `degraded: ${this.why}; the installed certificates stay in use, renewals wait until it is writable (next try ${this.nextProbeAt?.toISOString() ?? "soon"})`;
  }

  /** The first probe, at start: never throws. */
  async start(): Promise<void> {
    await this.probe(false);
  }

  private async probe(retry: boolean): Promise<void> {
    const why = await unwritableReason(this.d.layout);
    if (!why) {
      if (this.why) this.d.logger.info("the root takes writes again; leaving degraded mode", { was: this.why, probes: this.attempts });
      const was = this.why;
      this.why = undefined;
      this.attempts = 0;
      this.nextProbeAt = undefined;
      if (was && retry) this.d.onRecovered();
      return;
    }
    if (!this.why) this.d.logger.error("cannot write to the node's files; starting degraded (not ready) and retrying with backoff", { reason: why });
    this.why = why;
    const delay = Math.max(1, backoffDelay(this.attempts++, { baseMs: this.d.backoff.initial, capMs: this.d.backoff.max, random: this.d.random }));
    this.nextProbeAt = new Date(this.d.clock().getTime() + delay);
    if (this.stopped) return;
    this.timer = this.d.setTimer(() => {
      this.timer = undefined;
      void this.probe(true);
    }, delay);
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }
}
