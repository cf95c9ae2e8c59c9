// Time for the whole program: the current time and the timers that fire on it. Everything that
// waits (retries, heartbeats, campaign ticks, service-cert checks) takes a Clock, so tests advance
// a fake one (test/support/fake-clock.ts) instead of shrinking intervals and sleeping.
//
// A Clock is callable (`clock()` is the time now), so code and tests that inject a plain
// `() => Date` keep working: `toClock` gives such a function the real timers.

export interface Timer {
  cancel(): void;
}

export interface TimerOptions {
  /** Let the process exit while this timer is pending (real timers only). */
  unref?: boolean;
}

export interface Clock {
  (): Date;
  setTimeout(fn: () => void, ms: number, o?: TimerOptions): Timer;
  setInterval(fn: () => void, ms: number, o?: TimerOptions): Timer;
}

/** What constructors accept: a full Clock, or just a source of "now" (then timers are real). */
export type ClockLike = Clock | (() => Date);

function realTimer(t: NodeJS.Timeout, clear: (t: NodeJS.Timeout) => void, o?: TimerOptions): Timer {
  if (o?.unref) t.unref();
  return { cancel: () => clear(t) };
}

/** The real clock, or `now` with real timers. */
export function systemClock(now: () => Date = () => new Date()): Clock {
  return Object.assign(() => now(), {
    setTimeout: (fn: () => void, ms: number, o?: TimerOptions) => realTimer(setTimeout(fn, ms), clearTimeout, o),
    setInterval: (fn: () => void, ms: number, o?: TimerOptions) => realTimer(setInterval(fn, ms), clearInterval, o),
  });
}

export function isClock(c: ClockLike): c is Clock {
  return typeof (c as Partial<Clock>).setTimeout === "function" && typeof (c as Partial<Clock>).setInterval === "function";
}

export function toClock(c: ClockLike | undefined): Clock {
  if (!c) return systemClock();
  return isClock(c) ? c : systemClock(c);
}
