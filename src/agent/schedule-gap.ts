// The longest wait between two runs of a cron schedule, so the agent can tell when a certificate
// lives too short for it. Computed from node-cron's own parse of the expression.
import cron from "node-cron";

const DAY = 86_400_000;

/** Largest gap between consecutive points of `points` (sorted or not) on a cycle of `period`. */
function cyclicGap(points: number[], period: number): number {
  const p = [...new Set(points)].sort((a, b) => a - b);
  let gap = p[0] + period - p[p.length - 1];
  for (let i = 1; i < p.length; i++) gap = Math.max(gap, p[i] - p[i - 1]);
  return gap;
}

export function scheduleGapMs(expression: string): number {
  const f = cron.parse(expression);
  const everyDay = f.dayOfMonth.length === 31 && f.month.length === 12 && f.dayOfWeek.length === 7;
  const inHour = f.minute.flatMap((m) => f.second.map((s) => (m * 60 + s) * 1000));
  if (everyDay && f.hour.length === 24) return cyclicGap(inHour, 3_600_000);
  const inDay = f.hour.flatMap((h) => inHour.map((x) => h * 3_600_000 + x));
  if (everyDay) return cyclicGap(inDay, DAY);
  // Day, weekday or month restrictions: a week of checks (or a whole year, for months) is the bound.
  if (f.month.length === 12 && f.dayOfMonth.length === 31) {
    const days = f.dayOfWeek.map((d) => Number(d) % 7);
    return cyclicGap(days.flatMap((d) => inDay.map((x) => d * DAY + x)), 7 * DAY);
  }
  return 366 * DAY;
}
