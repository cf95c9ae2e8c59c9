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
