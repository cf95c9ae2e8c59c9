// The renewal schedule, on node-cron (ESM build only: its CJS copy keeps a separate registry).
import cron from "node-cron";
import type { Logger } from "../platform/log.js";

export interface ScheduledJob {
  stop(): void;
  /** Runs the job now (tests, `renew` requests). */
  execute(): Promise<unknown>;
}

export type Scheduler = (expression: string, job: () => Promise<unknown>) => ScheduledJob;

export function validateSchedule(expression: string): void {
  if (!cron.validate(expression)) throw new Error(`invalid schedule "${expression}": use cron syntax, e.g. "* * * * *" (every minute)`);
}

/** node-cron with overlap prevention and its own log lines routed into winston. */
export function cronScheduler(logger: Logger): Scheduler {
  return (expression, job) => {
    validateSchedule(expression);
    const task = cron.schedule(expression, () => job(), {
      name: "nodecert-renewal-check",
      noOverlap: true,
      logger: {
        info: (m) => logger.info(String(m), { source: "node-cron" }),
        warn: (m) => logger.warn(String(m), { source: "node-cron" }),
        error: (m, e) => logger.error(String(m), { source: "node-cron", error: e?.message }),
        debug: (m, e) => logger.debug(String(m), { source: "node-cron", error: e?.message }),
      },
    });
    return {
      stop: () => void task.destroy(),
      execute: () => task.execute(),
    };
  };
}
