// AES-256-GCM sealing of the CA private key under a key-encryption key (KEK).
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

const AAD = Buffer.from("nodecert:ca-key:v1");

export interface SealedKey {
  v: 1;
  alg: "AES-256-GCM";
  iv: string;
  tag: string;
  ct: string;
}

export function checkKek(kek: Buffer): void {
  if (kek.length !== 32) throw new Error(`key-encryption key must be 32 bytes, found ${kek.length}: restore the original kek file`);
}

export function seal(plaintext: Buffer, kek: Buffer, random: (n: number) => Buffer = randomBytes): SealedKey {
  checkKek(kek);
  const iv = random(12);
  const c = createCipheriv("aes-256-gcm", kek, iv);
  c.setAAD(AAD);
  const ct = Buffer.concat([c.update(plaintext), c.final()]);
  return { v: 1, alg: "AES-256-GCM", iv: iv.toString("base64"), tag: c.getAuthTag().toString("base64"), ct: ct.toString("base64") };
}

export function unseal(sealed: SealedKey, kek: Buffer): Buffer {
  checkKek(kek);
  if (sealed.v !== 1 || sealed.alg !== "AES-256-GCM") throw new Error(`unsupported sealed key format v${sealed.v} ${sealed.alg}`);
  const d = createDecipheriv("aes-256-gcm", kek, Buffer.from(sealed.iv, "base64"));
  d.setAAD(AAD);
  d.setAuthTag(Buffer.from(sealed.tag, "base64"));
  try {
    return Buffer.concat([d.update(Buffer.from(sealed.ct, "base64")), d.final()]);
  } catch {
    throw new Error("cannot decrypt the CA key: the key-encryption key does not match (wrong kek file or credential?)");
  }
}
