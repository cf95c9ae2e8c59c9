// Loads @peculiar/x509 on top of Node's WebCrypto. Every module that touches X.509 imports
// x509 from here so the provider is set exactly once, before first use.
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";

const subtleCrypto = webcrypto as unknown as Crypto;
x509.cryptoProvider.set(subtleCrypto);

export { x509 };
export const crypto = subtleCrypto;
export const subtle = subtleCrypto.subtle;
