// The renewal schedule, on croner: cron syntax (5 fields, or 6 with seconds first), overlapping
// runs skipped. croner computes local time with Date's own getters; node-cron, used before,
// formatted every tick through Intl.DateTimeFormat, which keeps ICU's locale and time-zone data
// resident (~9 MiB RSS in an agent that idles; docs/BENCHMARKS.md).
import { Cron } from "croner";
import type { Logger } from "../log.js";

export interface ScheduledJob {
  stop(): void;
  /** Runs the job now (tests, `renew` requests). */
  execute(): Promise<unknown>;
}

export type Scheduler = (expression: string, job: () => Promise<unknown>) => ScheduledJob;

export function validateSchedule(expression: string): void {
  try {
    new Cron(expression, { paused: true }).stop();
  } catch (e) {
    throw new Error(`invalid schedule "${expression}": use cron syntax, e.g. "* * * * *" (every minute) (${(e as Error).message})`);
  }
}

/** croner with overlap prevention; a skipped or failed run is logged. */
export function cronScheduler(logger: Logger): Scheduler {
  return (expression, job) => {
    validateSchedule(expression);
    const task = new Cron(
      expression,
      {
        name: "nodecert-renewal-check",
        protect: () => logger.debug("scheduled check skipped: the previous one is still running", { source: "scheduler" }),
        catch: (e) => logger.error("scheduled check failed", { source: "scheduler", error: (e as Error)?.message }),
      },
      async () => {
        await job();
      },
    );
    return {
      stop: () => task.stop(),
      execute: () => task.trigger(),
    };
  };
}
