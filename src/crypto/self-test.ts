// A real self-test of the crypto the process runs on. crypto.getFips() can say 1 while every
// operation fails, so FIPS mode is proven by doing the work: SHA-256 and ECDSA P-256 sign/verify
// must succeed (through node:crypto and WebCrypto, which @peculiar/x509 uses), and MD5 must fail.
import { createHash, generateKeyPairSync, getFips, sign, verify, webcrypto } from "node:crypto";

export interface SelfTestCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface SelfTestResult {
  ok: boolean;
  /** Whether the checks were those of FIPS mode (MD5 must fail, getFips() must be 1). */
  expectFips: boolean;
  getFips: number;
  checks: SelfTestCheck[];
  durationMs: number;
}

const SHA256_ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const msg = (e: unknown) => ((e as Error).message || String(e)).split("\n")[0];

async function check(name: string, fn: () => Promise<string> | string): Promise<SelfTestCheck> {
  try {
    return { name, ok: true, detail: await fn() };
  } catch (e) {
    return { name, ok: false, detail: msg(e) };
  }
}

export async function runSelfTest(o: { expectFips: boolean }): Promise<SelfTestResult> {
  const started = performance.now();
  const fips = getFips();
  const subtle = webcrypto.subtle;
  const checks: SelfTestCheck[] = [];

  checks.push(
    await check("fips-flag", () => {
      if (o.expectFips && fips !== 1) throw new Error(`crypto.getFips() is ${fips}, expected 1`);
      return `crypto.getFips() = ${fips}`;
    }),
  );
  checks.push(
    await check("sha256", async () => {
      const a = createHash("sha256").update("abc").digest("hex");
      if (a !== SHA256_ABC) throw new Error(`SHA-256("abc") gave ${a}`);
      const b = Buffer.from(await subtle.digest("SHA-256", new TextEncoder().encode("abc"))).toString("hex");
      if (b !== SHA256_ABC) throw new Error(`WebCrypto SHA-256("abc") gave ${b}`);
      return "known answer matches (node:crypto and WebCrypto)";
    }),
  );
  checks.push(
    await check("ecdsa-p256", async () => {
      const data = Buffer.from("nodecert self-test");
      const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
      const sig = sign("sha256", data, privateKey);
      if (!verify("sha256", data, publicKey, sig)) throw new Error("a fresh ECDSA P-256 signature does not verify");
      if (verify("sha256", Buffer.from("tampered"), publicKey, sig)) throw new Error("a signature verified over different data");
      const alg = { name: "ECDSA", hash: "SHA-256" };
      const pair = (await subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"])) as CryptoKeyPair;
      const wsig = await subtle.sign(alg, pair.privateKey, data);
      if (!(await subtle.verify(alg, pair.publicKey, wsig, data))) throw new Error("a fresh WebCrypto ECDSA P-256 signature does not verify");
      return "generate, sign and verify (node:crypto and WebCrypto)";
    }),
  );
  if (o.expectFips) {
    checks.push(
      await check("md5-refused", () => {
        let digest: string | undefined;
        try {
          digest = createHash("md5").update("abc").digest("hex");
        } catch (e) {
          return `MD5 refused: ${msg(e)}`;
        }
        throw new Error(`MD5 is available (md5("abc") = ${digest}): the process is not restricted to the FIPS provider`);
      }),
    );
  } else {
    checks.push(
      await check("md5", () => {
        try {
          createHash("md5").update("abc").digest("hex");
          return "MD5 available (default provider)";
        } catch (e) {
          return `MD5 unavailable: ${msg(e)}`;
        }
      }),
    );
  }
  return { ok: checks.every((c) => c.ok), expectFips: o.expectFips, getFips: fips, checks, durationMs: Math.round((performance.now() - started) * 10) / 10 };
}

/** One line: "passed (fips-flag, sha256, ecdsa-p256, md5-refused)" or "FAILED: sha256: ...". */
export function describeSelfTest(r: SelfTestResult): string {
  if (r.ok) return `passed (${r.checks.map((c) => c.name).join(", ")})`;
  return `FAILED: ${r.checks
    .filter((c) => !c.ok)
    .map((c) => `${c.name}: ${c.detail}`)
    .join("; ")}`;
}
