// Runs the audit of one node's root: the CIS checks of the chosen benchmark, then nodecert's own.
import { existsSync } from "node:fs";
import path from "node:path";
import { layoutFor, nodeLayout } from "../agent/layout.js";
import { NodeStore } from "../agent/node-store.js";
import { loadYamlConfig } from "../config/load.js";
import { AgentConfig } from "../config/agent.js";
import { BENCHMARKS, cisChecks } from "./cis-1-12.js";
import { kubeletFiles } from "./node-files.js";
import { nodecertChecks } from "./nodecert-checks.js";
import { summarize, type AuditReport } from "./report.js";

export interface AuditOptions {
  root: string;
  benchmark: string;
  /** agent.yaml (default <root>/etc/nodecert/agent.yaml); read for stateDir, dangerWindow, tokenFile, addresses. */
  configFile?: string;
  addresses?: string[];
  now: Date;
}

export class AuditError extends Error {}

export async function runAudit(o: AuditOptions): Promise<AuditReport> {
  if (!(BENCHMARKS as readonly string[]).includes(o.benchmark)) throw new AuditError(`unknown benchmark "${o.benchmark}": use ${BENCHMARKS.join(", ")}`);
  const root = path.resolve(o.root);
  if (!existsSync(root)) throw new AuditError(`root ${root} does not exist: pass --root with the node's filesystem root`);
  const configFile = o.configFile ?? path.join(root, "etc/nodecert/agent.yaml");
  let config: AgentConfig | undefined;
  if (existsSync(configFile)) {
    try {
      config = loadYamlConfig(AgentConfig, configFile, { root });
    } catch (e) {
      throw new AuditError(`${(e as Error).message}; fix it or pass --config`);
    }
  }
  const layout = config ? layoutFor(config) : nodeLayout(root);
  // A damaged or unreadable state file must not stop the audit: the checks that need it say so.
  const state = await new NodeStore(layout, { what: "nodecert audit" }).read().catch(() => undefined);
  const k = await kubeletFiles(root);
  const cis = await cisChecks(k, { managesClient: !!state?.certificates.client, managesServing: !!state?.certificates.serving, clientCurrent: layout.current("client"), servingCurrent: layout.current("serving") });
  const own = await nodecertChecks({
    layout,
    configFile: config ? configFile : undefined,
    tokenFile: config?.tokenFile,
    dangerWindowMs: config?.dangerWindow ?? 86_400_000,
    addresses: o.addresses?.length ? o.addresses : [...(config?.addresses.only ?? []), ...(config?.addresses.only ? config.addresses.extra : [])],
    now: o.now,
  });
  const checks = [...cis, ...own];
  return { benchmark: o.benchmark, root, generatedAt: o.now.toISOString(), summary: summarize(checks), checks };
}
