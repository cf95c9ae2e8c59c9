// CA public-key pins in kubeadm's format: "sha256:" + hex SHA-256 of the SubjectPublicKeyInfo DER.
import { createHash, X509Certificate } from "node:crypto";

export function spkiPin(spkiDer: Uint8Array | ArrayBuffer): string {
  return "sha256:" + createHash("sha256").update(Buffer.from(spkiDer as ArrayBuffer)).digest("hex");
}

export function certificatePin(certPemOrDer: string | Buffer): string {
  const cert = new X509Certificate(certPemOrDer);
  return spkiPin(cert.publicKey.export({ format: "der", type: "spki" }));
}

const PIN_RE = /^sha256:[0-9a-f]{64}$/;

export function normalizePin(pin: string): string {
  const p = pin.trim().toLowerCase();
  if (!PIN_RE.test(p)) {
    throw new Error(`invalid CA pin "${pin}": expected sha256:<64 hex digits> as printed by 'nodecert server init' or kubeadm`);
  }
  return p;
}
