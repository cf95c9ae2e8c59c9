// `nodecert status`: a table like `kubeadm certs check-expiration`.
import { promises as fs } from "node:fs";
import type { NodeLayout } from "./layout.js";
import { certificateInfo } from "../pki/certificate-info.js";
import { splitCertificates } from "../pki/pem.js";
import { keyMatchesCertificate } from "../pki/verify.js";
import { privateKeyBlock } from "../pki/pem.js";
import { formatDuration } from "../config/duration.js";
import { NodeStore } from "./node-store.js";
import { escapeTerminal } from "../platform/text.js";
import type { CryptoRecord } from "./crypto-record.js";
import { readApplyRecord } from "./kubelet-apply-record.js";

export interface StatusRow {
  certificate: string;
  path: string;
  state: "valid" | "expired" | "missing" | "unreadable" | "invalid" | "not-yet-valid";
  expires?: string;
  residualSeconds?: number;
  issuer?: string;
  key?: string;
  serial?: string;
  problem?: string;
  nextRenewal?: string;
  lastError?: string;
  evicted?: string;
  /** Verified apply's outcome for this certificate (agent.yaml kubelet:), when it ran for this serial. */
  kubelet?: string;
}

export async function certificateStatus(layout: NodeLayout, now: Date): Promise<StatusRow[]> {
  const rows: StatusRow[] = [];
  const store = new NodeStore(layout, { what: "nodecert status" });
  // A damaged state file must not hide the certificates: the table shows them without it.
  const state = await store.read().catch(() => undefined);
  const applied = await readApplyRecord(layout);
  for (const [name, kind] of [
    ["kubelet-client", "client"],
    ["kubelet-server", "serving"],
  ] as const) {
    const path = layout.current(kind);
    const read = await store.readCurrent(kind);
    if (read.state === "unreadable") {
      rows.push({ certificate: name, path, state: "unreadable", problem: read.reason });
      continue;
    }
    const text = read.state === "present" ? read.pem : undefined;
    if (!text) {
      rows.push({ certificate: name, path, state: "missing" });
      continue;
    }
    const row = rowFor(name, path, text, now, true);
    const rec = state?.certificates[kind];
    if (rec?.renewAt && rec.serial === row.serial) row.nextRenewal = rec.renewAt;
    const seen = applied?.[kind];
    if (seen) row.kubelet = seen.serial === row.serial ? seen.outcome : "pending";
    if (state?.evicted) row.evicted = `${state.evicted.at}: ${state.evicted.reason} (to re-join: 'nodecert token create --node ${state.nodeName}' on the control plane, then 'nodecert join' here)`;
    rows.push(row);
  }
  // On the first row, whether or not a certificate is installed: a refused first join shows too.
  const lastError = await store.readLastError().catch(() => undefined);
  if (lastError) rows[0].lastError = `${lastError.at}: ${lastError.message}`;
  const ca = await fs.readFile(layout.caFile, "utf8").catch(() => undefined);
  const caCerts = ca ? splitCertificates(ca) : [];
  if (!caCerts.length) rows.push({ certificate: "ca", path: layout.caFile, state: "missing" });
  caCerts.forEach((c, i) => rows.push(rowFor(caCerts.length > 1 ? `ca[${i}]` : "ca", layout.caFile, c, now, false)));
  return rows;
}

function rowFor(name: string, path: string, pem: string, now: Date, withKey: boolean): StatusRow {
  try {
    const info = certificateInfo(splitCertificates(pem)[0]);
    const residual = Math.floor((info.notAfter.getTime() - now.getTime()) / 1000);
    let state: StatusRow["state"] = residual <= 0 ? "expired" : info.notBefore > now ? "not-yet-valid" : "valid";
    let problem: string | undefined;
    if (withKey) {
      const key = privateKeyBlock(pem);
      if (!key || !keyMatchesCertificate(pem, key)) {
        state = "invalid";
        problem = key ? "private key does not match the certificate" : "file holds no private key";
      }
    }
    return {
      certificate: name,
      path,
      state,
      expires: info.notAfter.toISOString(),
      residualSeconds: residual,
      issuer: info.issuerCN ?? info.issuer,
      key: info.keyDescription,
      serial: info.serial,
      problem,
    };
  } catch (e) {
    return { certificate: name, path, state: "invalid", problem: (e as Error).message };
  }
}

export function statusHealthy(rows: StatusRow[]): boolean {
  return rows.every((r) => r.state === "valid");
}

export function formatStatusTable(rows: StatusRow[]): string {
  const header = ["CERTIFICATE", "EXPIRES", "RESIDUAL TIME", "ISSUER", "KEY", "SERIAL", "NEXT RENEWAL", "KUBELET", "STATE"];
  const when = (iso?: string) => (iso ? iso.replace("T", " ").replace(/\.\d+Z$/, " UTC") : "");
  const body = rows.map((r) => [
    r.certificate,
    r.expires ? r.expires.replace("T", " ").replace(/\.\d+Z$/, " UTC") : r.state === "unreadable" ? "<unreadable>" : "<missing>",
    r.residualSeconds === undefined ? "" : r.residualSeconds <= 0 ? "expired" : formatDuration(r.residualSeconds * 1000),
    r.issuer ?? "",
    r.key ?? "",
    r.serial ?? "",
    when(r.nextRenewal),
    r.kubelet ?? "",
    r.problem ? `${r.state}: ${r.problem}` : r.state,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cols: string[]) => cols.map((c, i) => c.padEnd(widths[i])).join("   ").trimEnd();
  const lastError = rows.find((r) => r.lastError)?.lastError;
  const evicted = rows.find((r) => r.evicted)?.evicted;
  // The control plane wrote much of these: shown with control characters escaped.
  return [line(header), ...body.map(line)].join("\n") + "\n" + (lastError ? `\nLAST ERROR: ${escapeTerminal(lastError)}\n` : "") + (evicted ? `\nEVICTED: ${escapeTerminal(evicted)}\n` : "");
}

/** The crypto provider block under the table: what the agent recorded at its last start. */
export function formatCryptoLines(r: CryptoRecord | undefined, where: string): string {
  if (!r) return `\nCRYPTO PROVIDER  unknown: no agent has recorded one in ${where} (it is written when 'nodecert agent' or 'nodecert join' starts)\n`;
  const provider = `${r.provider.name}${r.provider.version ? ` ${r.provider.version}` : ""}${r.provider.module ? ` (${r.provider.module})` : ""}`;
  return (
    "\n" +
    [
      `CRYPTO PROVIDER  ${provider}`,
      `FIPS MODE        ${r.fips ? "yes" : "no"} (fips: ${r.mode}; host ${r.hostFips.enabled ? "in" : "not in"} FIPS mode)`,
      `OPENSSL          ${r.openssl}`,
      `SELF-TEST        ${r.selfTest.summary}`,
      `REASON           ${r.reason}`,
      `RECORDED         ${r.recordedAt} by ${r.by} (pid ${r.pid})`,
    ].join("\n") +
    "\n"
  );
}
