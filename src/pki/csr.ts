// Builds and reads the kubelet's CSRs. Pure: WebCrypto only.
import { x509 } from "./x509-provider.js";
import { describeKeyObject, keyObjectFromSpki, signingParams, type KeyAlgorithm, type KeyPair } from "./keys.js";
import { NODE_ORG, nodeCommonName, normalizeIp, splitSans, type SanSet } from "./names.js";
import { EKU_CLIENT_AUTH, EKU_SERVER_AUTH } from "./certificate-info.js";

/** Finds an extension by class (a CSR's getExtension only accepts OIDs). */
export function extensionOf<T extends x509.Extension>(exts: readonly x509.Extension[], ctor: new (...a: never[]) => T): T | null {
  return (exts.find((e) => e instanceof ctor) as T | undefined) ?? null;
}

export function sansOf(ext: x509.SubjectAlternativeNameExtension | null): SanSet {
  const dns: string[] = [];
  const ip: string[] = [];
  for (const n of ext?.names.items ?? []) {
    if (n.type === "dns") dns.push(n.value.toLowerCase());
    else if (n.type === "ip") ip.push(normalizeIp(n.value));
  }
  return { dns: dns.sort(), ip: ip.sort() };
}

export type CertKind = "client" | "serving";

export interface NodeCsrRequest {
  kind: CertKind;
  nodeName: string;
  keys: KeyPair;
  /** Serving only: DNS names and IP addresses. */
  sans?: string[];
}

export function nodeSubject(nodeName: string): x509.JsonName {
  return [{ O: [NODE_ORG] }, { CN: [nodeCommonName(nodeName)] }];
}

export async function createNodeCsr(req: NodeCsrRequest): Promise<string> {
  const extensions: x509.Extension[] = [
    new x509.KeyUsagesExtension(keyUsageFor(req.keys.algorithm), true),
    new x509.ExtendedKeyUsageExtension([req.kind === "client" ? EKU_CLIENT_AUTH : EKU_SERVER_AUTH]),
  ];
  if (req.kind === "serving") {
    const sans = splitSans(req.sans ?? []);
    extensions.push(
      new x509.SubjectAlternativeNameExtension([
        ...sans.dns.map((value) => ({ type: "dns" as const, value })),
        ...sans.ip.map((value) => ({ type: "ip" as const, value })),
      ]),
    );
  }
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: nodeSubject(req.nodeName),
    keys: { privateKey: req.keys.privateKey, publicKey: req.keys.publicKey },
    signingAlgorithm: signingParams(req.keys.algorithm),
    extensions,
  });
  const pem = csr.toString("pem");
  return pem.endsWith("\n") ? pem : pem + "\n";
}

/** digitalSignature always; keyEncipherment only for RSA (RSA key transport). */
export function keyUsageFor(alg: KeyAlgorithm | undefined): x509.KeyUsageFlags {
  let flags = x509.KeyUsageFlags.digitalSignature;
  if (alg?.startsWith("RSA")) flags |= x509.KeyUsageFlags.keyEncipherment;
  return flags;
}

export interface ParsedCsr {
  subjectCN: string[];
  subjectO: string[];
  /** Every attribute type in the subject, e.g. ["O","CN"], to catch extra fields. */
  subjectFields: string[];
  sans: SanSet;
  /** SAN types other than DNS and IP (URIs, e-mail), which nodecert never signs. */
  otherSanTypes: string[];
  extendedKeyUsages: string[];
  keyAlgorithm: KeyAlgorithm | undefined;
  keyDescription: string;
  keyBits: number | undefined;
  /** RSA only: the public exponent. */
  rsaPublicExponent?: bigint;
  /** Why the public key could not be loaded at all (a point off the curve, a malformed key). */
  keyProblem?: string;
  spki: ArrayBuffer;
  signatureValid: boolean;
  /** The CSR's self-signature: WebCrypto name and hash, e.g. "ECDSA" + "SHA-256"; no hash for EdDSA. */
  signatureAlgorithm: { name: string; hash?: string };
  pem: string;
}

export async function parseCsr(pem: string): Promise<ParsedCsr> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(pem);
  } catch (e) {
    throw new Error(`CSR is not a valid PKCS#10 request: ${(e as Error).message}`, { cause: e });
  }
  let signatureValid: boolean;
  try {
    signatureValid = await csr.verify();
  } catch {
    signatureValid = false;
  }
  const spki = csr.publicKey.rawData;
  let key: ReturnType<typeof describeKeyObject>;
  let rsaPublicExponent: bigint | undefined;
  let keyProblem: string | undefined;
  try {
    const ko = keyObjectFromSpki(spki);
    key = describeKeyObject(ko);
    if (ko.asymmetricKeyType === "rsa") rsaPublicExponent = ko.asymmetricKeyDetails?.publicExponent;
  } catch (e) {
    // OpenSSL refuses to load it (e.g. an EC point that is not on its curve): say so, let policy refuse it.
    const ec = (csr.publicKey.algorithm as { name?: string }).name === "ECDSA";
    keyProblem = `${ec ? "its EC public point is not on the named curve, or is malformed" : "its public key is malformed"} (OpenSSL: ${(e as Error).message})`;
    key = { algorithm: undefined, description: "an invalid public key" };
  }
  const sanExt = extensionOf(csr.extensions, x509.SubjectAlternativeNameExtension);
  const otherSanTypes = (sanExt?.names.items ?? []).map((n) => n.type).filter((t) => t !== "dns" && t !== "ip");
  const eku = extensionOf(csr.extensions, x509.ExtendedKeyUsageExtension);
  const sigAlg = csr.signatureAlgorithm as { name?: string; hash?: { name?: string } | string };
  const signatureAlgorithm = { name: sigAlg.name ?? "unknown", hash: typeof sigAlg.hash === "string" ? sigAlg.hash : sigAlg.hash?.name };
  const fields: string[] = [];
  for (const rdn of csr.subjectName.toJSON()) fields.push(...Object.keys(rdn));
  return {
    subjectCN: csr.subjectName.getField("CN"),
    subjectO: csr.subjectName.getField("O"),
    subjectFields: fields,
    sans: sansOf(sanExt),
    otherSanTypes,
    extendedKeyUsages: Array.from(eku?.usages ?? [], (u) => String(u)),
    keyAlgorithm: key.algorithm,
    keyDescription: key.description,
    keyBits: key.bits,
    rsaPublicExponent,
    keyProblem,
    spki,
    signatureValid,
    signatureAlgorithm,
    pem,
  };
}
