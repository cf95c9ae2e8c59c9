// Retention: issuance records are kept until their certificate has expired plus a grace period (a
// node's newest and confirmed ones always stay: the lineage needs them), audit events for a
// configured time. Audit events are written out as JSON lines into the archive directory before
// they are deleted; if that write fails, nothing is deleted.
import { promises as fs } from "node:fs";
import path from "node:path";
import type { AuditEvent, Store } from "./store/store.js";
import type { Logger } from "../platform/log.js";
import { ensureDir } from "../platform/files.js";

export interface RetentionPolicy {
  certificateGrace: number;
  audit: number;
  interval: number;
}

export interface RetentionRun {
  at: Date;
  certificatesPruned: number;
  auditExported: number;
  auditPruned: number;
  /** The JSON-lines file the pruned audit events went to. */
  archive?: string;
}

/** One audit event as a JSON line (the format of `nodecert audit-log export` and of the archive). */
export function auditJsonLine(e: AuditEvent): string {
  return JSON.stringify({ time: e.time.toISOString(), type: e.type, node: e.node, source: e.source, rule: e.rule, reason: e.reason, detail: e.detail }) + "\n";
}

/** Streams events into `file` (0600) through a temp file, fsynced and renamed: whole or absent. */
export async function writeJsonLines(file: string, events: AsyncIterable<AuditEvent>, o: { dirMode?: number } = {}): Promise<number> {
  const it = events[Symbol.asyncIterator]();
  const first = await it.next();
  // Nothing to write: nothing is created (a server whose audit is young never makes the archive).
  if (first.done) return 0;
  if (o.dirMode !== undefined) await ensureDir(path.dirname(file), o.dirMode);
  const tmp = `${file}.tmp-${process.pid}`;
  const fh = await fs.open(tmp, "w", 0o600);
  let n = 0;
  try {
    let buf = "";
    for (let r: IteratorResult<AuditEvent> = first; !r.done; r = await it.next()) {
      const e = r.value;
      buf += auditJsonLine(e);
      n++;
      if (buf.length > 1 << 16) {
        await fh.write(buf);
        buf = "";
      }
    }
    if (buf) await fh.write(buf);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await fs.rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  if (n === 0) {
    await fs.rm(tmp, { force: true });
    return 0;
  }
  await fs.rename(tmp, file);
  return n;
}

const stamp = (d: Date) => d.toISOString().replace(/[:.]/g, "-");

export class Retention {
  private timer: { cancel(): void } | undefined;
  private stopped = false;
  private running: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly d: { store: Store; policy: RetentionPolicy; archiveDir: string; clock: () => Date; logger: Logger; setTimer: (fn: () => void, ms: number) => { cancel(): void } },
  ) {}

  /** One pass: export, then prune. Serialized with itself. */
  runOnce(): Promise<RetentionRun | undefined> {
    const run = this.running.catch(() => undefined).then(() => this.pass());
    this.running = run;
    return run;
  }

  private async pass(): Promise<RetentionRun | undefined> {
    const { store, policy, logger } = this.d;
    if (!store.pruneCertificates || !store.auditBefore || !store.pruneAudit) {
      logger.warn("this store does not support retention; issuance and audit records are kept");
      return undefined;
    }
    const at = this.d.clock();
    const auditCutoff = new Date(at.getTime() - policy.audit);
    let archive: string | undefined = path.join(this.d.archiveDir, `audit-before-${stamp(auditCutoff)}.jsonl`);
    const auditExported = await writeJsonLines(archive, store.auditBefore(auditCutoff), { dirMode: 0o700 });
    if (!auditExported) archive = undefined;
    const auditPruned = auditExported ? await store.pruneAudit(auditCutoff) : 0;
    const certificatesPruned = await store.pruneCertificates(new Date(at.getTime() - policy.certificateGrace));
    if (auditPruned || certificatesPruned) logger.info("retention pruned old records", { certificatesPruned, auditPruned, archive });
    return { at, certificatesPruned, auditExported, auditPruned, archive };
  }

  /** Runs now, then every `interval` (0: never). */
  start(): void {
    if (this.d.policy.interval <= 0) return;
    const tick = () => {
      this.timer = undefined;
      void this.runOnce()
        .catch((e: Error) => this.d.logger.error("retention failed; nothing was pruned this time", { error: e.message }))
        .finally(() => {
          if (!this.stopped) this.timer = this.d.setTimer(tick, this.d.policy.interval);
        });
    };
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    await this.running.catch(() => undefined);
  }
}
