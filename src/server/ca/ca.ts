// The cluster CA on disk: create (self-signed or provided), seal its key, load it back.
import { promises as fs, existsSync } from "node:fs";
import { X509Certificate } from "node:crypto";
import { certificateInfo } from "../../pki/certificate-info.js";
import { createSelfSignedCa, type Issuer, type RandomBytes } from "../../pki/certificate.js";
import { exportPrivateKeyPem, generateKeyPair, importPrivateKeyPem } from "../../pki/keys.js";
import { splitCertificates } from "../../pki/pem.js";
import { certificatePin } from "../../pki/pin.js";
import { keyMatchesCertificate } from "../../pki/verify.js";
import { seal, unseal, type SealedKey } from "./key-at-rest.js";
import type { ServerPaths } from "../paths.js";
import { ensureDir, writeFileAtomic } from "../../platform/files.js";

export interface LoadedCa {
  issuer: Issuer;
  /** Certificates served after a leaf: intermediates only, never the anchor. */
  intermediatesPem: string;
  /** Trust anchors handed to nodes (ca.crt on a node). */
  bundlePem: string;
  /** Pin of the first anchor, in kubeadm's format. */
  pin: string;
}

export const CA_LIFETIME_MS = 10 * 365 * 86_400_000;

export async function readKek(paths: ServerPaths): Promise<Buffer> {
  try {
    return await fs.readFile(paths.kek);
  } catch (e) {
    throw new Error(`cannot read the key-encryption key at ${paths.kek} (${(e as NodeJS.ErrnoException).code}): it was created by 'nodecert server init'; restore it or pass it with systemd LoadCredential=kek:...`, { cause: e });
  }
}

export async function ensureKek(paths: ServerPaths, random: RandomBytes): Promise<Buffer> {
  if (existsSync(paths.kek)) return readKek(paths);
  if (process.env.CREDENTIALS_DIRECTORY) throw new Error(`no key-encryption key in $CREDENTIALS_DIRECTORY (${paths.kek})`);
  // A new KEK next to an existing sealed CA key could never open it: the old KEK was moved.
  if (existsSync(paths.caKeyEnc)) {
    throw new Error(
      `${paths.caKeyEnc} exists but its key-encryption key ${paths.kek} does not: if you moved it (e.g. to /etc/nodecert/kek for systemd's LoadCredential=), ` +
        `run with CREDENTIALS_DIRECTORY pointing at its directory or put it back; refusing to create a new one`,
    );
  }
  const kek = Buffer.from(random(32));
  await writeFileAtomic(paths.kek, kek, 0o600);
  return kek;
}

/** Splits a provided CA file into the signing certificate + intermediates and the self-signed anchors. */
export function splitProvidedChain(chainPem: string): { signingPem: string; intermediates: string[]; anchors: string[] } {
  const certs = splitCertificates(chainPem);
  if (!certs.length) throw new Error("the CA certificate file holds no PEM certificate");
  const infos = certs.map((c) => certificateInfo(c));
  if (!infos[0].isCA) throw new Error(`"${infos[0].subject}" is not a CA certificate (basicConstraints CA:TRUE is missing)`);
  const anchors = certs.filter((_, i) => infos[i].selfSigned);
  const intermediates = certs.filter((_, i) => !infos[i].selfSigned);
  if (!anchors.length) {
    throw new Error("the CA certificate file does not end in a self-signed root: for an intermediate CA, append its chain up to the root");
  }
  return { signingPem: certs[0], intermediates, anchors };
}

export interface InitCaOptions {
  providedCertPem?: string;
  providedKeyPem?: string;
  commonName?: string;
  now: Date;
  random: RandomBytes;
}

/** Creates the CA if there is none; returns false (changing nothing) when one exists already. */
export async function ensureCa(paths: ServerPaths, kek: Buffer, o: InitCaOptions): Promise<boolean> {
  if (existsSync(paths.caCert) && existsSync(paths.caKeyEnc)) return false;
  await ensureDir(paths.caDir, 0o700);
  let keyPem: string;
  let certChain: string[];
  let anchors: string[];
  if (o.providedCertPem || o.providedKeyPem) {
    if (!o.providedCertPem || !o.providedKeyPem) throw new Error("--ca-cert and --ca-key go together");
    const split = splitProvidedChain(o.providedCertPem);
    if (!keyMatchesCertificate(split.signingPem, o.providedKeyPem)) {
      throw new Error("the CA key does not belong to the first certificate in the CA certificate file");
    }
    keyPem = o.providedKeyPem;
    certChain = [split.signingPem, ...split.intermediates.filter((c) => c !== split.signingPem)];
    anchors = split.anchors;
    await importPrivateKeyPem(keyPem); // fail now, not at first signature, if the key type is unsupported
  } else {
    const keys = await generateKeyPair("ECDSA-P256");
    const pem = await createSelfSignedCa({ commonName: o.commonName ?? "nodecert-ca", keys, now: o.now, lifetimeMs: CA_LIFETIME_MS, random: o.random });
    keyPem = await exportPrivateKeyPem(keys.privateKey);
    certChain = [pem];
    anchors = [pem];
  }
  const sealed = seal(Buffer.from(keyPem), kek, (n) => Buffer.from(o.random(n)));
  await writeFileAtomic(paths.caKeyEnc, JSON.stringify(sealed), 0o600);
  await writeFileAtomic(paths.caBundle, anchors.join(""), 0o644);
  await writeFileAtomic(paths.caCert, dedupe(certChain).join(""), 0o644);
  return true;
}

function dedupe(pems: string[]): string[] {
  const seen = new Set<string>();
  return pems.filter((p) => {
    const fp = new X509Certificate(p).fingerprint256;
    if (seen.has(fp)) return false;
    seen.add(fp);
    return true;
  });
}

export async function loadCa(paths: ServerPaths, kek?: Buffer): Promise<LoadedCa> {
  if (!existsSync(paths.caCert)) throw new Error(`no CA in ${paths.dir}: run 'nodecert server init --dir ${paths.dir}' first`);
  const k = kek ?? (await readKek(paths));
  const sealed = JSON.parse(await fs.readFile(paths.caKeyEnc, "utf8")) as SealedKey;
  const keyPem = unseal(sealed, k).toString();
  const certs = splitCertificates(await fs.readFile(paths.caCert, "utf8"));
  const bundlePem = await fs.readFile(paths.caBundle, "utf8");
  const anchorFps = new Set(splitCertificates(bundlePem).map((p) => new X509Certificate(p).fingerprint256));
  const keys = await importPrivateKeyPem(keyPem);
  return {
    issuer: { certPem: certs[0], privateKey: keys.privateKey, algorithm: keys.algorithm },
    intermediatesPem: certs.filter((c) => !anchorFps.has(new X509Certificate(c).fingerprint256)).join(""),
    bundlePem,
    pin: certificatePin(splitCertificates(bundlePem)[0]),
  };
}
