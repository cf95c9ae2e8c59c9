// Which CA signs and which CAs are trusted, changeable at run time (CA rotation).
import { createHash, X509Certificate } from "node:crypto";
import { splitCertificates } from "../pki/pem.js";
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

  constructor(public signer: LoadedCa) {}

  /** The bundle nodes install as ca.crt and the server verifies client certificates against. */
  get trustBundle(): string {
    return this.extraAnchors ? mergeBundles(this.extraAnchors, this.signer.bundlePem) : this.signer.bundlePem;
  }

  get intermediates(): string {
    return this.signer.intermediatesPem + this.extraIntermediates;
  }

  set(signer: LoadedCa, also?: LoadedCa): void {
    this.signer = signer;
    this.extraAnchors = also?.bundlePem ?? "";
    this.extraIntermediates = also?.intermediatesPem ?? "";
  }
}
