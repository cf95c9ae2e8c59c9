// What an audit reports: one result per check, kube-bench's statuses, and a summary a CI job reads.
export type AuditStatus = "PASS" | "FAIL" | "WARN" | "MANUAL";

export interface CheckResult {
  /** kube-bench's id for CIS checks (4.1.1 ...), NC.x.y for nodecert's own. */
  id: string;
  section: string;
  /** kube-bench's wording for CIS checks. */
  text: string;
  /** As the benchmark classifies the recommendation. */
  type: "automated" | "manual";
  status: AuditStatus;
  /** What was found, with the file it was found in. */
  detail: string;
  /** What to do; empty when it passes. */
  remediation: string;
}

export interface AuditReport {
  benchmark: string;
  root: string;
  generatedAt: string;
  summary: Record<"pass" | "fail" | "warn" | "manual", number>;
  checks: CheckResult[];
}

/** Exit codes: 0 nothing failed, 1 a check failed (or warned, with --strict), 2 the audit could not run. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_ERROR = 2;

export function summarize(checks: CheckResult[]): AuditReport["summary"] {
  const s = { pass: 0, fail: 0, warn: 0, manual: 0 };
  for (const c of checks) s[c.status.toLowerCase() as keyof typeof s]++;
  return s;
}

export function exitCodeFor(report: AuditReport, strict: boolean): number {
  return report.summary.fail > 0 || (strict && report.summary.warn > 0) ? EXIT_FAILED : EXIT_OK;
}

export function formatTable(r: AuditReport): string {
  const lines: string[] = [];
  let section = "";
  for (const c of r.checks) {
    if (c.section !== section) {
      section = c.section;
      lines.push(`[INFO] ${section}`);
    }
    lines.push(`[${c.status}] ${c.id} ${c.text}`);
    lines.push(`        ${c.detail}`);
  }
  const todo = r.checks.filter((c) => c.status !== "PASS" && c.remediation);
  if (todo.length) {
    lines.push("", "== Remediations ==");
    for (const c of todo) lines.push(`${c.id} ${c.remediation}`);
  }
  lines.push("", "== Summary ==", `${r.summary.pass} checks PASS`, `${r.summary.fail} checks FAIL`, `${r.summary.warn} checks WARN`, `${r.summary.manual} checks INFO/MANUAL`);
  return lines.join("\n") + "\n";
}
