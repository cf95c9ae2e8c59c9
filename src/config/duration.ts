// Durations like "90s", "30m", "24h", "365d" or combinations ("1h30m").
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(text: string): number {
  const s = String(text).trim();
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let matched = 0;
  for (const m of s.matchAll(re)) {
    total += Number(m[1]) * UNIT_MS[m[2]];
    matched += m[0].length;
  }
  if (s.length === 0 || matched !== s.length) {
    throw new Error(`invalid duration "${text}": use a number with a unit, e.g. 90s, 30m, 24h, 365d`);
  }
  return total;
}

export function formatDuration(ms: number): string {
  const neg = ms < 0;
  let rest = Math.abs(ms);
  const d = Math.floor(rest / 86_400_000);
  rest -= d * 86_400_000;
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  const s = Math.floor((rest - m * 60_000) / 1000);
  // Like kubeadm: the two largest units are enough to act on.
  let out: string;
  if (d >= 1) out = h ? `${d}d${h}h` : `${d}d`;
  else if (h >= 1) out = m ? `${h}h${m}m` : `${h}h`;
  else if (m >= 1) out = s ? `${m}m${s}s` : `${m}m`;
  else if (s >= 1 || rest === 0) out = `${s}s`;
  else out = `${rest}ms`;
  return neg ? `-${out}` : out;
}
