// PEM helpers: pure string/byte transforms, no I/O.

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

export interface PemBlock {
  label: string;
  der: Buffer;
}

export function decodePem(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  for (const m of text.matchAll(BLOCK)) {
    blocks.push({ label: m[1], der: Buffer.from(m[2].replace(/\s+/g, ""), "base64") });
  }
  return blocks;
}

export function encodePem(label: string, der: ArrayBuffer | Uint8Array): string {
  const b64 = Buffer.from(der instanceof ArrayBuffer ? new Uint8Array(der) : der).toString("base64");
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** Certificates in a PEM bundle, in order; other blocks are ignored. */
export function certificateBlocks(text: string): Buffer[] {
  return decodePem(text).filter((b) => b.label === "CERTIFICATE").map((b) => b.der);
}

export function splitCertificates(text: string): string[] {
  return certificateBlocks(text).map((der) => encodePem("CERTIFICATE", der));
}

export function privateKeyBlock(text: string): string | undefined {
  const b = decodePem(text).find((x) => /PRIVATE KEY$/.test(x.label));
  return b ? encodePem(b.label, b.der) : undefined;
}
