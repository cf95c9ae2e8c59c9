// Which CA signs and which CAs are trusted, changeable at run time (CA rotation).
import { createHash, X509Certificate } from "node:crypto";
import { splitCertificates } from "../../pki/pem.js";
import { certificatePin } from "../../pki/pin.js";
import type { LoadedCa } from "./ca.js";

export function bundleSha256(pem: string): string {
  return createHash("sha256").update(pem).digest("hex");
}

/** Concatenates PEM bundles, dropping duplicates and keeping the first occurrence's order. */
export function mergeBundles(...bundles: string[]): string {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const b of bundles) {
    for (const c of splitCertificates(b)) {
      const fp = new X509Certificate(c).fingerprint256;
      if (!seen.has(fp)) {
        seen.add(fp);
        out.push(c);
      }
    }
  }
  return out.join("");
}

export class Authority {
  /** Trust anchors beyond the signer's (the other CA during a rotation). */
  private extraAnchors = "";
  private extraIntermediates = "";
  /** During a CA rotation: the new CA cross-signed by the old one. */
  private cross = "";

  constructor(public signer: LoadedCa) {}

  /** The bundle nodes install as ca.crt and the server verifies client certificates against. */
  get trustBundle(): string {
    return this.extraAnchors ? mergeBundles(this.extraAnchors, this.signer.bundlePem) : this.signer.bundlePem;
  }

  get intermediates(): string {
    return this.signer.intermediatesPem + this.extraIntermediates;
  }

  /**
   * Cross-certificates that vouch for the CAs in the trust bundle (sent with every pushed bundle):
   * an agent adds a CA only when one of them, signed by a CA it trusts, names exactly that CA.
   */
  get vouchers(): string[] {
    return this.cross ? [this.cross] : [];
  }

  /**
   * What the server's TLS chain carries after its own certificate file (leaf + the signer's
   * intermediates): once the new CA signs, its cross-certificate and the old CA's intermediates,
   * so a node anchored in the old CA (a join with the original pin) still verifies the server.
   */
  get tlsChainExtra(): string {
    if (!this.cross || certificatePin(this.cross) !== certificatePin(this.signer.issuer.certPem)) return "";
    return this.cross + this.extraIntermediates;
  }

  /** The trust-bundle message every node gets (with vouchers for a CA that is new to it). */
  trustBundleMessage(): { type: "trust-bundle"; bundle: string; vouchers: string[] } {
    return { type: "trust-bundle", bundle: this.trustBundle, vouchers: this.vouchers };
  }

  set(signer: LoadedCa, also?: LoadedCa, cross?: string): void {
    this.signer = signer;
    this.extraAnchors = also?.bundlePem ?? "";
    this.extraIntermediates = also?.intermediatesPem ?? "";
    this.cross = cross ?? "";
  }
}
