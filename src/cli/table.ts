// Plain-text tables for the admin verbs: columns padded to the widest cell, three spaces apart.
import { escapeTerminal } from "../platform/text.js";

/** Nodes feed these cells (agent version, ack errors): every one is shown with control characters escaped. */
export function table(header: string[], cells: string[][]): string {
  const rows = cells.map((r) => r.map((c) => escapeTerminal(c ?? "")));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cols: string[]) => cols.map((c, i) => (c ?? "").padEnd(widths[i])).join("   ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n") + "\n";
}
