// The key algorithms nodecert supports, by name, and what a Node KeyObject is in those terms.
// Pure and light: node:crypto only, so wire schemas, configuration and certificate reading can use
// it without loading the X.509 library (keys.ts, which generates keys through it, re-exports this).
import { createPublicKey, type KeyObject } from "node:crypto";

export const KEY_ALGORITHMS = ["ECDSA-P256", "ECDSA-P384", "RSA-2048", "RSA-3072", "RSA-4096", "Ed25519"] as const;
export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number];
export const DEFAULT_KEY_ALGORITHM: KeyAlgorithm = "ECDSA-P256";

export function parseKeyAlgorithm(s: string): KeyAlgorithm {
  const norm = s.trim().toUpperCase().replace(/_/g, "-");
  const found = KEY_ALGORITHMS.find((a) => a.toUpperCase() === norm);
  if (!found) throw new Error(`unknown key algorithm "${s}": use one of ${KEY_ALGORITHMS.join(", ")}`);
  return found;
}

/** Describes a Node KeyObject (public or private) as one of our algorithm names, or a plain description. */
export function describeKeyObject(key: KeyObject): { algorithm: KeyAlgorithm | undefined; description: string; bits?: number } {
  const type = key.asymmetricKeyType;
  const d = key.asymmetricKeyDetails ?? {};
  if (type === "ec") {
    const curve = d.namedCurve;
    if (curve === "prime256v1") return { algorithm: "ECDSA-P256", description: "ECDSA P-256", bits: 256 };
    if (curve === "secp384r1") return { algorithm: "ECDSA-P384", description: "ECDSA P-384", bits: 384 };
    return { algorithm: undefined, description: `ECDSA ${curve ?? "unknown curve"}` };
  }
  if (type === "rsa") {
    const bits = d.modulusLength ?? 0;
    const alg = (["RSA-2048", "RSA-3072", "RSA-4096"] as const).find((a) => a === `RSA-${bits}`);
    return { algorithm: alg, description: `RSA ${bits}`, bits };
  }
  if (type === "ed25519") return { algorithm: "Ed25519", description: "Ed25519", bits: 256 };
  return { algorithm: undefined, description: type ?? "unknown" };
}

export function keyObjectFromSpki(spkiDer: ArrayBuffer | Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.from(spkiDer as ArrayBuffer), format: "der", type: "spki" });
}

