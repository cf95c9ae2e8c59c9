import { strict as assert } from "node:assert";
import { drawRenewAt, effectiveRenewAt, DEADLINE_HIGH, DEADLINE_LOW } from "../../src/agent/deadline.js";
import { uniform } from "../../src/platform/random.js";

describe("agent/deadline: renew at a point drawn in [70 %, 90 %] of the lifetime", () => {
  it("property: 20,000 draws over random lifetimes all land in [70 %, 90 %] and spread uniformly", () => {
    const fractions: number[] = [];
    for (let i = 0; i < 20_000; i++) {
      const notBefore = new Date(Date.UTC(2026, 0, 1) + Math.floor(uniform() * 1e11));
      const life = 60_000 + Math.floor(uniform() * 2 * 365 * 86_400_000);
      const notAfter = new Date(notBefore.getTime() + life);
      const at = drawRenewAt(notBefore, notAfter, uniform());
      const f = (at.getTime() - notBefore.getTime()) / life;
      assert.ok(f >= DEADLINE_LOW - 1e-9 && f <= DEADLINE_HIGH + 1e-9, `fraction ${f} outside [0.7, 0.9]`);
      fractions.push(f);
    }
    // Uniform on [0.7, 0.9]: each of 10 buckets holds ~10 %; mean ~0.8.
    const buckets = new Array(10).fill(0);
    for (const f of fractions) buckets[Math.min(9, Math.floor((f - 0.7) / 0.02))]++;
    for (const b of buckets) assert.ok(b > 1600 && b < 2400, `bucket count ${b} is not near 2000: ${buckets}`);
    const mean = fractions.reduce((a, b) => a + b, 0) / fractions.length;
    assert.ok(Math.abs(mean - 0.8) < 0.005, `mean ${mean}`);
  });

  it("the edges of the draw are exactly 70 % and 90 %", () => {
    const nb = new Date(0);
    const na = new Date(1000_000);
    assert.equal(drawRenewAt(nb, na, 0).getTime(), 700_000);
    const top = drawRenewAt(nb, na, 0.999999999).getTime();
    assert.ok(top >= 899_999 && top <= 900_000, `top ${top}`);
  });

  it("renewBefore overrides the drawn deadline", () => {
    const notAfter = new Date(Date.UTC(2027, 0, 1));
    const drawn = new Date(Date.UTC(2026, 9, 1));
    assert.equal(effectiveRenewAt(notAfter, drawn).getTime(), drawn.getTime());
    assert.equal(effectiveRenewAt(notAfter, drawn, 7 * 86_400_000).toISOString(), "2026-12-25T00:00:00.000Z");
  });
});
