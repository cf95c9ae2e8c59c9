// Creates CA and leaf certificates. Pure: takes keys, time and randomness, returns PEM.
import { x509 } from "./x509-provider.js";
import { keyObjectFromSpki, describeKeyObject, signingParams, type KeyAlgorithm, type KeyPair } from "./keys.js";
import { keyUsageFor } from "./csr.js";
import { EKU_CLIENT_AUTH, EKU_NODECERT_CONTROL_PLANE, EKU_SERVER_AUTH, normalizeSerial } from "./certificate-info.js";
import type { SanSet } from "./names.js";

export type RandomBytes = (n: number) => Uint8Array;

/** A random positive serial with 128 bits of entropy (x509 strips sign and leading zeros). */
export function randomSerial(random: RandomBytes): string {
  for (;;) {
    const bytes = random(16);
    if (bytes.some((b) => b !== 0)) return Buffer.from(bytes).toString("hex");
  }
}

/** notBefore is backdated so nodes with a slightly slow clock accept a fresh certificate. */
export const BACKDATE_MS = 5 * 60 * 1000;

export interface CaParams {
  commonName: string;
  keys: KeyPair;
  now: Date;
  lifetimeMs: number;
  random: RandomBytes;
}

export async function createSelfSignedCa(p: CaParams): Promise<string> {
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(p.random),
    name: [{ CN: [p.commonName] }],
    notBefore: new Date(p.now.getTime() - BACKDATE_MS),
    notAfter: new Date(p.now.getTime() + p.lifetimeMs),
    signingAlgorithm: signingParams(p.keys.algorithm),
    keys: { privateKey: p.keys.privateKey, publicKey: p.keys.publicKey },
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(p.keys.publicKey),
    ],
  });
  return withNewline(cert.toString("pem"));
}

export type LeafKind = "client" | "serving" | "server" | "admin";

export interface Issuer {
  certPem: string;
  privateKey: CryptoKey;
  algorithm: KeyAlgorithm;
}

export interface LeafParams {
  issuer: Issuer;
  subject: x509.JsonName;
  /** SubjectPublicKeyInfo DER of the subject's key (from the approved CSR). */
  spki: ArrayBuffer;
  kind: LeafKind;
  /** Serving and server certificates: DNS names and IP addresses, kept apart (never retyped). */
  sans?: SanSet;
  now: Date;
  lifetimeMs: number;
  random: RandomBytes;
}

export interface IssuedLeaf {
  pem: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

/**
 * The extended key usages a certificate of `kind` carries, decided by the kind alone (never by a
 * CSR): only the control plane's own TLS certificate gets the control-plane identity.
 */
export function extendedKeyUsagesFor(kind: LeafKind): string[] {
  if (kind === "server") return [EKU_SERVER_AUTH, EKU_NODECERT_CONTROL_PLANE];
  if (kind === "serving") return [EKU_SERVER_AUTH];
  return [EKU_CLIENT_AUTH];
}

export async function issueLeaf(p: LeafParams): Promise<IssuedLeaf> {
  const issuerCert = new x509.X509Certificate(p.issuer.certPem);
  const subjectKeyAlg = describeKeyObject(keyObjectFromSpki(p.spki)).algorithm;
  const publicKey = new x509.PublicKey(p.spki);
  const serverAuth = p.kind === "serving" || p.kind === "server";
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(keyUsageFor(subjectKeyAlg), true),
    new x509.ExtendedKeyUsageExtension(extendedKeyUsagesFor(p.kind)),
    await x509.SubjectKeyIdentifierExtension.create(publicKey),
    await authorityKeyId(issuerCert),
  ];
  if (serverAuth) {
    const sans = p.sans ?? { dns: [], ip: [] };
    extensions.push(
      new x509.SubjectAlternativeNameExtension([
        ...sans.dns.map((value) => ({ type: "dns" as const, value })),
        ...sans.ip.map((value) => ({ type: "ip" as const, value })),
      ]),
    );
  }
  const notBefore = new Date(p.now.getTime() - BACKDATE_MS);
  // A leaf never outlives the CA that signed it.
  const notAfter = new Date(Math.min(p.now.getTime() + p.lifetimeMs, issuerCert.notAfter.getTime()));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(p.random),
    subject: p.subject,
    // Keep the issuer's exact DER name: Go matches issuer and subject byte for byte.
    issuer: new x509.Name(issuerCert.subjectName.toArrayBuffer()),
    notBefore,
    notAfter,
    signingAlgorithm: signingParams(p.issuer.algorithm),
    publicKey,
    signingKey: p.issuer.privateKey,
    extensions,
  });
  return { pem: withNewline(cert.toString("pem")), serial: normalizeSerial(cert.serialNumber), notBefore: cert.notBefore, notAfter: cert.notAfter };
}

export interface CrossSignParams {
  /** The CA certificate to vouch for (a rotation's new CA). */
  subjectCertPem: string;
  /** The CA that vouches for it (the rotation's old CA). */
  issuer: Issuer;
  now: Date;
  random: RandomBytes;
}

/**
 * Cross-signs a CA: the same subject, key and SKI as `subjectCertPem`, issued and signed by
 * `issuer`, CA:TRUE, never outliving either CA. A chain leaf → cross-certificate verifies for
 * anyone who trusts the issuer, so pins of the old CA keep anchoring the new one; and an agent
 * can check that its trusted CA vouches for a CA before adding it to its bundle.
 */
export async function crossSignCa(p: CrossSignParams): Promise<string> {
  const subject = new x509.X509Certificate(p.subjectCertPem);
  const issuerCert = new x509.X509Certificate(p.issuer.certPem);
  const bc = subject.getExtension(x509.BasicConstraintsExtension);
  if (!bc?.ca) throw new Error(`"${subject.subject}" is not a CA certificate; only a CA can be cross-signed`);
  const ku = subject.getExtension(x509.KeyUsagesExtension);
  const ski = subject.getExtension(x509.SubjectKeyIdentifierExtension);
  const notAfter = Math.min(subject.notAfter.getTime(), issuerCert.notAfter.getTime());
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(p.random),
    subject: new x509.Name(subject.subjectName.toArrayBuffer()),
    issuer: new x509.Name(issuerCert.subjectName.toArrayBuffer()),
    notBefore: new Date(Math.max(p.now.getTime() - BACKDATE_MS, subject.notBefore.getTime())),
    notAfter: new Date(notAfter),
    signingAlgorithm: signingParams(p.issuer.algorithm),
    publicKey: subject.publicKey,
    signingKey: p.issuer.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(true, bc.pathLength, true),
      new x509.KeyUsagesExtension(ku?.usages ?? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      ski ? new x509.SubjectKeyIdentifierExtension(ski.keyId) : await x509.SubjectKeyIdentifierExtension.create(subject.publicKey),
      await authorityKeyId(issuerCert),
    ],
  });
  return withNewline(cert.toString("pem"));
}

async function authorityKeyId(issuer: x509.X509Certificate): Promise<x509.AuthorityKeyIdentifierExtension> {
  const ski = issuer.getExtension(x509.SubjectKeyIdentifierExtension);
  if (ski) return new x509.AuthorityKeyIdentifierExtension(ski.keyId);
  return x509.AuthorityKeyIdentifierExtension.create(issuer.publicKey);
}

/** PEM blocks end in a newline so they can be concatenated into chains and bundles. */
function withNewline(pem: string): string {
  return pem.endsWith("\n") ? pem : pem + "\n";
}
