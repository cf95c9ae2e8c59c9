// The server's own certificates: its TLS serving certificate and the admin client certificate.
// One place says what they are (identity, files, modes, lifetime) and how one is issued, so
// `server init`, the CA rotation and the renewal check cannot drift apart.
import type { x509 } from "../../crypto/provider.js";
import type { RandomBytes } from "../../pki/certificate.js";
import { exportPrivateKeyPem, generateKeyPair } from "../../pki/keys.js";
import { ADMIN_CN, ADMIN_ORG, splitSans } from "../../pki/names.js";
import { extendedKeyUsagesFor } from "../../pki/certificate.js";
import type { LoadedCa } from "./ca.js";
import type { ServerPaths } from "../paths.js";
import { sign } from "./signer.js";
import type { IssuedCertRecord, Store } from "../store/store.js";
import { ensureDir, writeFileAtomic } from "../../platform/files.js";

export const SERVICE_LIFETIME_MS = 365 * 86_400_000;

export interface ServiceCert {
  /** What logs call it. */
  label: "server TLS certificate" | "admin client certificate";
  /** Owner in the certificate record. */
  owner: string;
  subject: x509.JsonName;
  kind: "server" | "admin";
  /** Server only: the names agents and admins reach it by (server.yaml `sans`). */
  sans?: string[];
  dir: string;
  certFile: string;
  keyFile: string;
  /** The server certificate is public (0644); the admin one is a credential's half (0600). */
  certMode: number;
  /** Extended key usages it must carry (the server's: serverAuth and the control-plane identity). */
  extendedKeyUsages: string[];
}

export function serviceCerts(paths: ServerPaths, sans: string[]): ServiceCert[] {
  return [
    { label: "server TLS certificate", owner: "nodecert:server", subject: [{ CN: ["nodecert-server"] }], kind: "server", sans, dir: paths.tlsDir, certFile: paths.tlsCert, keyFile: paths.tlsKey, certMode: 0o644, extendedKeyUsages: extendedKeyUsagesFor("server") },
    { label: "admin client certificate", owner: ADMIN_CN, subject: [{ O: [ADMIN_ORG] }, { CN: [ADMIN_CN] }], kind: "admin", dir: paths.adminDir, certFile: paths.adminCert, keyFile: paths.adminKey, certMode: 0o600, extendedKeyUsages: extendedKeyUsagesFor("admin") },
  ];
}

export interface IssueContext {
  store: Store;
  now: Date;
  random: RandomBytes;
}

/** Signs a fresh key for `svc` with `ca`, records the certificate, then writes key and certificate. */
export async function issueServiceCert(ca: LoadedCa, svc: ServiceCert, c: IssueContext): Promise<IssuedCertRecord> {
  await ensureDir(svc.dir, 0o700);
  const keys = await generateKeyPair("ECDSA-P256");
  const spki = await crypto.subtle.exportKey("spki", keys.publicKey);
  const signed = await sign(ca, { owner: svc.owner, subject: svc.subject, spki, kind: svc.kind, sans: svc.sans ? splitSans(svc.sans) : undefined, lifetimeMs: SERVICE_LIFETIME_MS }, c.now, c.random);
  // Recorded before it is written: a certificate in use is always in the record, which the
  // admin check looks its serial up in.
  await c.store.recordCertificate(signed.record);
  // Key first, then certificate. A crash in between leaves a pair that does not match; the
  // server's renewal check sees that at the next start and issues a new pair.
  await writeFileAtomic(svc.keyFile, await exportPrivateKeyPem(keys.privateKey), 0o600);
  await writeFileAtomic(svc.certFile, signed.chainPem, svc.certMode);
  return signed.record;
}
