// What one agent may cost the fleet channel. An agent sends a hello per connection, a status per
// renewal and an ack per command: a handful of messages a minute. Twenty thousand hellos from one
// node used to queue 20,000 trust-bundle pushes and as many SQLite writes.

// The limits' shape and defaults are configuration (server.yaml `channel`): defined in config/.
export { DEFAULT_CHANNEL_LIMITS, type ChannelLimits } from "../../config/server-defaults.js";

/** A token bucket on an injected clock: `take()` is false once the burst is spent faster than the rate refills it. */
export class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly now: () => number,
  ) {
    this.tokens = burst;
    this.at = now();
  }

  take(): boolean {
    const t = this.now();
    // A clock stepped backwards refills nothing (and takes nothing back).
    this.tokens = Math.min(this.burst, this.tokens + (Math.max(0, t - this.at) / 1000) * this.rate);
    this.at = t;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
