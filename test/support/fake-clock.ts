// A Clock for tests: time moves only when the test says so, and the timers due on the way fire
// in order, each followed by the promise jobs it started (so async callbacks get to run).
import type { Clock, Timer } from "../../src/platform/clock.js";

interface Pending {
  id: number;
  at: number;
  every?: number;
  fn: () => void;
}

export interface FakeClock extends Clock {
  /** Moves time forward by `ms`, firing every timer due on the way. */
  advance(ms: number): Promise<void>;
  /** Fires timers due now (after a test changed what is scheduled). */
  flush(): Promise<void>;
  /** Timers waiting to fire. */
  pending(): number;
  /** When the next timer fires, in ms from now (undefined when none). */
  nextIn(): number | undefined;
  set(d: Date): void;
}

/** Lets promise jobs and I/O callbacks that a timer started run before time moves on. */
export const settle = async (rounds = 5): Promise<void> => {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r));
};

export function fakeClock(start: Date | string = "2026-01-01T00:00:00Z"): FakeClock {
  let now = new Date(start).getTime();
  let seq = 0;
  const timers = new Map<number, Pending>();
  const add = (fn: () => void, ms: number, every?: number): Timer => {
    const id = ++seq;
    timers.set(id, { id, at: now + Math.max(0, ms), every, fn });
    return { cancel: () => void timers.delete(id) };
  };
  const due = (until: number) => [...timers.values()].filter((t) => t.at <= until).sort((a, b) => a.at - b.at || a.id - b.id)[0];
  const runUntil = async (until: number) => {
    for (let t = due(until); t; t = due(until)) {
      now = Math.max(now, t.at);
      if (t.every !== undefined) t.at += Math.max(1, t.every);
      else timers.delete(t.id);
      t.fn();
      await settle();
    }
    now = Math.max(now, until);
  };
  return Object.assign(() => new Date(now), {
    setTimeout: (fn: () => void, ms: number) => add(fn, ms),
    setInterval: (fn: () => void, ms: number) => add(fn, ms, ms),
    advance: (ms: number) => runUntil(now + ms),
    flush: () => runUntil(now),
    pending: () => timers.size,
    nextIn: () => {
      const t = due(Infinity);
      return t ? t.at - now : undefined;
    },
    set: (d: Date) => void (now = d.getTime()),
  });
}
