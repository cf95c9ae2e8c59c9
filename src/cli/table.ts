// Plain-text tables for the admin verbs: columns padded to the widest cell, three spaces apart.
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cols: string[]) => cols.map((c, i) => (c ?? "").padEnd(widths[i])).join("   ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n") + "\n";
}
