// The crypto this process runs on, as the rest of the code needs it: is it FIPS, which TLS
// suites to offer, which key algorithms may be generated, and the summary sent to the server.
// The provider is process-wide state (OpenSSL loads it once at startup): this module is its one
// owner. ensureCryptoMode records the report here; a process that never called it (tests,
// library use) is treated as FIPS only when OpenSSL itself says so.
import { getFips } from "node:crypto";
import { fipsKeyAlgorithmDecision, tlsCipherOptions } from "./fips-policy.js";
import { cryptoSummary, type CryptoReport, type CryptoSummaryFields } from "./report.js";

let current: CryptoReport | undefined;

/** Called by ensureCryptoMode once the process runs on its provider; returns the report. */
export function recordProcessCrypto(r: CryptoReport): CryptoReport {
  current = r;
  return r;
}

/** The report of the last ensureCryptoMode in this process (for status and metrics). */
export function currentCryptoReport(): CryptoReport | undefined {
  return current;
}

export function processFips(): boolean {
  const r = currentCryptoReport();
  return r ? r.fips : getFips() === 1;
}

/** What join/renew requests and the channel's hello say about this process's crypto. */
export function processCryptoSummary(): CryptoSummaryFields {
  const r = currentCryptoReport();
  if (r) return cryptoSummary(r);
  const fips = getFips() === 1;
  return { provider: `${fips ? "FIPS provider (not self-tested)" : "OpenSSL default provider"} (OpenSSL ${process.versions.openssl})`, fips, selfTest: "not-run" };
}

/** TLS options every client and server of this process adds: FIPS pins the TLS 1.3 suites. */
export function processTlsOptions(): { ciphers?: string } {
  return tlsCipherOptions(processFips());
}

/** Throws with the policy's reason when this process may not generate `alg` keys. */
export function assertKeyAlgorithmAllowed(alg: string): void {
  if (!processFips()) return;
  const d = fipsKeyAlgorithmDecision(alg);
  if (!d.allowed) throw new Error(d.reason);
}
