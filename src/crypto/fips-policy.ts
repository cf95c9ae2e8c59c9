// The algorithm policy of FIPS mode. Pure: callers (key generation, CSR approval, TLS setup)
// ask it what is allowed and get a reason they can show when something is refused. Imports only
// types from pki/, so pki/keys.ts can import this module without a cycle.
import type { KeyAlgorithm } from "../pki/key-algorithms.js";

/** Key algorithms allowed in FIPS mode (FIPS 186-4 RSA and ECDSA on NIST curves). */
export const FIPS_KEY_ALGORITHMS: readonly KeyAlgorithm[] = ["RSA-2048", "RSA-3072", "RSA-4096", "ECDSA-P256", "ECDSA-P384"];

/** Hashes allowed for signatures in FIPS mode. */
export const FIPS_SIGNATURE_HASHES = ["SHA-256", "SHA-384"] as const;

/** TLS 1.3 ciphersuites allowed in FIPS mode, in preference order (no ChaCha20-Poly1305). */
export const FIPS_TLS13_CIPHERSUITES = "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256";

/** Symmetric cipher for the CA key at rest (already AES-256-GCM in every mode). */
export const FIPS_KEY_AT_REST_CIPHER = "aes-256-gcm";

/** Why an algorithm outside the FIPS set is refused. */
const REFUSED: Record<string, string> = {
  Ed25519:
    "Ed25519 (EdDSA) is not an approved signature algorithm for the OpenSSL 3.0 FIPS provider's validation " +
    "(FIPS 186-4 approves RSA and ECDSA only); use ECDSA-P256, ECDSA-P384 or RSA-2048/3072/4096",
};

export type PolicyAnswer = { allowed: true } | { allowed: false; reason: string };

/** Is this key algorithm (a KEY_ALGORITHMS name) allowed in FIPS mode? */
export function fipsKeyAlgorithmDecision(alg: string): PolicyAnswer {
  if ((FIPS_KEY_ALGORITHMS as readonly string[]).includes(alg)) return { allowed: true };
  const reason = REFUSED[alg] ?? `${alg} is not an approved key algorithm in FIPS mode; use one of ${FIPS_KEY_ALGORITHMS.join(", ")}`;
  return { allowed: false, reason: `FIPS mode: ${reason}` };
}

/** Is this signature hash (WebCrypto name: "SHA-256"; or OpenSSL's "sha256") allowed in FIPS mode? */
export function fipsSignatureHashDecision(hash: string): PolicyAnswer {
  const norm = hash.toUpperCase().replace(/^SHA-?/, "SHA-");
  if ((FIPS_SIGNATURE_HASHES as readonly string[]).includes(norm)) return { allowed: true };
  return { allowed: false, reason: `FIPS mode: signatures with ${hash} are not allowed; use ${FIPS_SIGNATURE_HASHES.join(" or ")}` };
}

/** Throws with the policy's reason when alg is refused in FIPS mode. */
export function assertFipsKeyAlgorithm(alg: string): void {
  const d = fipsKeyAlgorithmDecision(alg);
  if (!d.allowed) throw new Error(d.reason);
}

/** The key algorithms a policy may allow: the configured ones, narrowed to the FIPS set in FIPS mode. */
export function allowedKeyAlgorithms(fips: boolean, configured: readonly KeyAlgorithm[]): KeyAlgorithm[] {
  return fips ? configured.filter((a) => FIPS_KEY_ALGORITHMS.includes(a)) : [...configured];
}

/**
 * Extra options for tls.createServer / https.request: FIPS mode pins the TLS 1.3 ciphersuites
 * (Node takes TLS 1.3 suite names in `ciphers`).
 */
export function tlsCipherOptions(fips: boolean): { ciphers?: string } {
  return fips ? { ciphers: FIPS_TLS13_CIPHERSUITES } : {};
}
