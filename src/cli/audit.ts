// `nodecert audit`: the CIS worker-node checks on PKI and kubelet TLS (kube-bench's ids and
// wording) plus nodecert's own files and certificates. Exit 0: nothing failed; 1: a check failed
// (or warned, with --strict); 2: the audit could not run.
import type { CliEnv } from "./env.js";
import { AuditError, runAudit } from "../audit/run.js";
import { EXIT_ERROR, exitCodeFor, formatTable } from "../audit/report.js";

export interface AuditCliOptions {
  root: string;
  output: string;
  benchmark: string;
  config?: string;
  address?: string[];
  strict?: boolean;
}

export async function audit(env: CliEnv, o: AuditCliOptions): Promise<void> {
  if (o.output !== "table" && o.output !== "json") {
    env.stderr.write(`nodecert audit: unknown output format "${o.output}": use table or json\n`);
    env.exitCode = EXIT_ERROR;
    return;
  }
  let report;
  try {
    report = await runAudit({ root: o.root, benchmark: o.benchmark, configFile: o.config, addresses: o.address, now: env.now() });
  } catch (e) {
    if (!(e instanceof AuditError)) throw e;
    env.stderr.write(`nodecert audit: ${e.message}\n`);
    env.exitCode = EXIT_ERROR;
    return;
  }
  env.stdout.write(o.output === "json" ? JSON.stringify(report, null, 2) + "\n" : formatTable(report));
  env.exitCode = exitCodeFor(report, !!o.strict);
}
