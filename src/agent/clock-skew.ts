// A node whose clock is off refuses the certificates it is given (not yet valid, or expired), so a
// join with such a clock is refused before any CSR is sent: the token stays unspent and the message
// says how far off the clock is. The server's time comes from its Date header on the CA fetch.

/** Beyond this the node's clock is called wrong: less than the 5-minute backdate of new certificates. */
export const MAX_CLOCK_SKEW_MS = 120_000;

export class ClockSkewError extends Error {
  constructor(
    readonly skewMs: number,
    message: string,
  ) {
    super(message);
  }
}

/** Local minus server, in ms; undefined when the server sent no usable Date header. */
export function clockSkewMs(serverDate: string | undefined, local: Date): number | undefined {
  const t = serverDate ? Date.parse(serverDate) : NaN;
  return Number.isFinite(t) ? local.getTime() - t : undefined;
}

function human(ms: number): string {
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${s} s (${Math.round(s / 60)} min)`;
  if (s < 172_800) return `${s} s (${Math.round(s / 3600)} h)`;
  return `${s} s (${Math.round(s / 86_400)} days)`;
}

export function assertClockInSync(server: string, serverDate: string | undefined, local: Date): void {
  const skew = clockSkewMs(serverDate, local);
  if (skew === undefined || Math.abs(skew) <= MAX_CLOCK_SKEW_MS) return;
  throw new ClockSkewError(
    skew,
    `your clock is ${human(skew)} ${skew < 0 ? "behind" : "ahead of"} the control plane at ${server} (this node: ${local.toISOString()}, ${server}: ${new Date(Date.parse(serverDate!)).toISOString()}): ` +
      `certificates issued now would be refused as ${skew < 0 ? "not yet valid" : "expired or wrongly dated"}. Fix the node's time (NTP, e.g. 'timedatectl set-ntp true') and join again; ` +
      `no CSR was sent and the bootstrap token was not used`,
  );
}
