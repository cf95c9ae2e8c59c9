// Key generation and import for the algorithms nodecert supports. Pure: WebCrypto only.
import { createPrivateKey, createPublicKey } from "node:crypto";
import { subtle } from "./x509-provider.js";
import { encodePem, decodePem } from "./pem.js";
import { describeKeyObject, type KeyAlgorithm } from "./key-algorithms.js";

// The names and Node-KeyObject helpers live in key-algorithms.ts, which loads no X.509 library.
export { KEY_ALGORITHMS, DEFAULT_KEY_ALGORITHM, parseKeyAlgorithm, describeKeyObject, keyObjectFromSpki, type KeyAlgorithm } from "./key-algorithms.js";

export interface KeyPair {
  algorithm: KeyAlgorithm;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
}

/** WebCrypto parameters for generating/importing a key of the given algorithm. */
export function keyParams(alg: KeyAlgorithm): RsaHashedKeyGenParams | EcKeyGenParams | Algorithm {
  switch (alg) {
    case "ECDSA-P256":
      return { name: "ECDSA", namedCurve: "P-256" };
    case "ECDSA-P384":
      return { name: "ECDSA", namedCurve: "P-384" };
    case "RSA-2048":
    case "RSA-3072":
    case "RSA-4096":
      return {
        name: "RSASSA-PKCS1-v1_5",
        modulusLength: Number(alg.slice(4)),
        publicExponent: new Uint8Array([1, 0, 1]),
        hash: "SHA-256",
      } as RsaHashedKeyGenParams;
    case "Ed25519":
      return { name: "Ed25519" };
  }
}

/** Signing algorithm used with a key: SHA-384 for P-384, SHA-256 otherwise. */
export function signingParams(alg: KeyAlgorithm): Algorithm | EcdsaParams {
  if (alg === "ECDSA-P256") return { name: "ECDSA", hash: "SHA-256" } as EcdsaParams;
  if (alg === "ECDSA-P384") return { name: "ECDSA", hash: "SHA-384" } as EcdsaParams;
  if (alg === "Ed25519") return { name: "Ed25519" };
  return { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } as RsaHashedImportParams;
}

export async function generateKeyPair(alg: KeyAlgorithm): Promise<KeyPair> {
  const pair = (await subtle.generateKey(keyParams(alg) as EcKeyGenParams, true, ["sign", "verify"])) as CryptoKeyPair;
  return { algorithm: alg, privateKey: pair.privateKey, publicKey: pair.publicKey };
}

export async function exportPrivateKeyPem(key: CryptoKey): Promise<string> {
  return encodePem("PRIVATE KEY", await subtle.exportKey("pkcs8", key));
}

/** Imports a PEM private key (PKCS#8, SEC1 or PKCS#1) as a WebCrypto signing key. */
export async function importPrivateKeyPem(pem: string): Promise<KeyPair> {
  const keyObject = createPrivateKey(pem);
  const { algorithm } = describeKeyObject(keyObject);
  if (!algorithm) throw new Error(`unsupported private key type ${describeKeyObject(keyObject).description}`);
  const pkcs8 = keyObject.export({ format: "der", type: "pkcs8" });
  const params = keyParams(algorithm);
  const privateKey = await subtle.importKey("pkcs8", pkcs8, params, true, ["sign"]);
  const spki = createPublicKey(keyObject).export({ format: "der", type: "spki" });
  const publicKey = await subtle.importKey("spki", spki, params, true, ["verify"]);
  return { algorithm, privateKey, publicKey };
}

export function hasPrivateKey(text: string): boolean {
  return decodePem(text).some((b) => /PRIVATE KEY$/.test(b.label));
}
