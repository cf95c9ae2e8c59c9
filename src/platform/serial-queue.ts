// Runs async tasks one after another, in the order they were queued. A failed task fails only its
// own caller; the tasks after it still run. The one helper for "never interleave these steps".

export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private pending = 0;

  /** @param onError sees every failure too (the caller's promise still rejects), e.g. to log it. */
  constructor(private readonly onError?: (e: unknown) => void) {}

  run<T>(fn: () => T | Promise<T>): Promise<T> {
    this.pending++;
    const run = this.tail.then(() => fn());
    this.tail = run.then(
      () => void this.pending--,
      (e) => {
        this.pending--;
        this.onError?.(e);
      },
    );
    return run;
  }

  /** True while a task runs or waits. */
  get busy(): boolean {
    return this.pending > 0;
  }

  /** Resolves once every task queued so far has finished (whatever its outcome). */
  idle(): Promise<void> {
    return this.tail.then(() => undefined);
  }
}
