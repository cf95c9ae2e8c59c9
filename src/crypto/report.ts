// What the process's crypto provider is, as `nodecert status`, the startup log, /metrics and the
// agent's hello say it. Types and formatting only: no detection, no re-exec.
import type { HostFips } from "./detect.js";
import type { SelfTestResult } from "./self-test.js";
import { describeSelfTest } from "./self-test.js";
import type { FipsMode } from "./fips-mode.js";

export interface ProviderInfo {
  name: string;
  version?: string;
  module?: string;
  config?: string;
  /** Where the module was found (configured fipsProviderDir, OPENSSL_MODULES, ...). */
  source?: string;
}

/** What `nodecert status`, the startup log and /metrics say about the crypto provider. */
export interface CryptoReport {
  /** The requested mode. */
  mode: FipsMode;
  /** Whether the process runs on the FIPS provider (and passed the FIPS self-test). */
  fips: boolean;
  /** Why this provider: one sentence an operator can act on. */
  reason: string;
  /** The OpenSSL Node is built with (its libcrypto; providers are loaded into it). */
  openssl: string;
  provider: ProviderInfo;
  host: HostFips;
  selfTest: SelfTestResult;
}

/** Flat fields for the startup log line. */
export function cryptoReportFields(r: CryptoReport): Record<string, unknown> {
  return {
    fipsMode: r.mode,
    fips: r.fips,
    openssl: r.openssl,
    provider: r.provider.name,
    providerVersion: r.provider.version,
    providerModule: r.provider.module,
    providerConfig: r.provider.config,
    selfTest: describeSelfTest(r.selfTest),
    reason: r.reason,
  };
}

/** The fields of the protocol's CryptoSummary (protocol/messages.ts validates them on the wire). */
export interface CryptoSummaryFields {
  provider: string;
  fips: boolean;
  selfTest?: "passed" | "failed" | "not-run";
}

/** The short form the agent's hello carries (protocol CryptoSummary: provider ≤ 128 chars). */
export function cryptoSummary(r: CryptoReport): CryptoSummaryFields & { selfTest: "passed" | "failed" } {
  const provider = `${r.provider.name}${r.provider.version ? ` ${r.provider.version}` : ""} (OpenSSL ${r.openssl})`;
  return { provider: provider.slice(0, 128), fips: r.fips, selfTest: r.selfTest.ok ? "passed" : "failed" };
}
