// When to renew: like client-go's certificate manager, a point drawn uniformly in [70 %, 90 %]
// of the certificate's lifetime, drawn once per certificate (and persisted by the caller).

export const DEADLINE_LOW = 0.7;
export const DEADLINE_HIGH = 0.9;

/** `u` is uniform in [0, 1). */
export function drawRenewAt(notBefore: Date, notAfter: Date, u: number): Date {
  const life = notAfter.getTime() - notBefore.getTime();
  return new Date(notBefore.getTime() + life * (DEADLINE_LOW + (DEADLINE_HIGH - DEADLINE_LOW) * u));
}

/** `renewBefore` (ms before expiry), when configured, overrides the drawn deadline. */
export function effectiveRenewAt(notAfter: Date, drawn: Date, renewBeforeMs?: number): Date {
  return renewBeforeMs === undefined ? drawn : new Date(notAfter.getTime() - renewBeforeMs);
}

/** How far nodecert's signer backdates notBefore (pki/certificate BACKDATE_MS; a test keeps them equal). */
export const ISSUER_BACKDATE_MS = 5 * 60 * 1000;

/**
 * Where the usable lifetime starts: the backdated slice before issuance was over before the node
 * got the certificate, so a 30-s certificate backdated 5 minutes must not count as 11 % used up.
 * `firstSeen` (when the node drew the deadline) caps it, for issuers that backdate less or not at all.
 */
export function usableStart(notBefore: Date, notAfter: Date, firstSeen: Date): Date {
  const start = Math.min(notBefore.getTime() + ISSUER_BACKDATE_MS, Math.max(notBefore.getTime(), firstSeen.getTime()));
  return start < notAfter.getTime() ? new Date(start) : notBefore;
}

/**
 * A lifetime the schedule cannot serve: checks `gapMs` apart can miss the 20 % wide window (a late
 * renewal), or, past 30 % of the lifetime, the certificate's expiry itself. Undefined when it fits.
 */
export function lifetimeTooShort(usableMs: number, gapMs: number, schedule: string): string | undefined {
  if (gapMs <= (DEADLINE_HIGH - DEADLINE_LOW) * usableMs) return undefined;
  const s = (ms: number) => `${Math.round(ms / 100) / 10}s`;
  const risk = gapMs >= (1 - DEADLINE_LOW) * usableMs ? "the certificate can expire between two checks" : "renewals can land after 90 % of the lifetime";
  return `certificate lifetime ${s(usableMs)} is too short for the schedule "${schedule}" (checks up to ${s(gapMs)} apart): ${risk}; check at least every ${s((DEADLINE_HIGH - DEADLINE_LOW) * usableMs)} or issue longer certificates`;
}
