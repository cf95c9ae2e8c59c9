import { strict as assert } from "node:assert";
import { checkToken, FailureLimiter, generateToken, hashSecret, parseToken, secretMatches, TOKEN_RE, type TokenRecord } from "../../src/server/tokens.js";
import { FakeClock, random } from "../support/helpers.js";

describe("server/tokens", () => {
  it("generates tokens in kubeadm's format with every character drawn from [a-z0-9]", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const t = generateToken(random);
      assert.match(t, TOKEN_RE);
      for (const ch of t.replace(".", "")) seen.add(ch);
    }
    assert.equal(seen.size, 36, "all 36 characters should appear across 500 tokens");
  });

  it("stores only a hash: the record never contains the secret", () => {
    const t = generateToken(random);
    const { secret } = parseToken(t)!;
    const h = hashSecret(secret);
    assert.ok(!h.includes(secret));
    assert.match(h, /^[0-9a-f]{64}$/);
  });

  it("compares secrets through fixed-length digests (constant time, no length leak, no throw)", () => {
    const h = hashSecret("0123456789abcdef");
    assert.equal(secretMatches("0123456789abcdef", h), true);
    assert.equal(secretMatches("0123456789abcdee", h), false);
    assert.equal(secretMatches("short", h), false);
    assert.equal(secretMatches("0123456789abcdef", "abcd"), false);
  });

  const clock = new FakeClock();
  const record = (o: Partial<TokenRecord> = {}): TokenRecord => ({ id: "abcdef", secretHash: hashSecret("0123456789abcdef"), usesLeft: 1, expiresAt: new Date(clock.t + 60_000), createdAt: clock.now(), ...o });

  it("accepts a valid token and refuses malformed, unknown, wrong, expired and used-up ones with reasons", () => {
    const tok = "abcdef.0123456789abcdef";
    assert.equal(checkToken(tok, record(), clock.now()).ok, true);
    const codes = [
      checkToken("not-a-token", record(), clock.now()),
      checkToken(tok, undefined, clock.now()),
      checkToken("abcdef.0123456789abcdee", record(), clock.now()),
      checkToken(tok, record({ expiresAt: clock.now() }), clock.now()),
      checkToken(tok, record({ usesLeft: 0 }), clock.now()),
    ].map((c) => (c.ok ? "ok" : c.code));
    assert.deepEqual(codes, ["token-malformed", "token-invalid", "token-invalid", "token-expired", "token-used"]);
  });

  it("rate-limits a source after too many failures and forgives it after the window", () => {
    const c = new FakeClock();
    const l = new FailureLimiter(3, 60_000, () => c.t);
    for (let i = 0; i < 3; i++) {
      assert.equal(l.retryAfter("10.0.0.1"), 0);
      l.fail("10.0.0.1");
    }
    assert.equal(l.retryAfter("10.0.0.1"), 60_000);
    assert.equal(l.retryAfter("10.0.0.2"), 0, "other sources are unaffected");
    c.advance(30_000);
    assert.equal(l.retryAfter("10.0.0.1"), 30_000);
    c.advance(30_001);
    assert.equal(l.retryAfter("10.0.0.1"), 0);
  });
});
