// `nodecert kubelet configure`: says what the kubelet's config.yaml must change for nodecert to
// manage its certificates, as a diff; with --write applies it atomically after a backup. A rerun
// on a configured file changes nothing.
import { promises as fs } from "node:fs";
import path from "node:path";
import { createTwoFilesPatch } from "diff";
import type { CliEnv } from "./env.js";
import { KubeletConfigError, planKubeletConfig } from "../kubelet/configure.js";
import { writeFileAtomic } from "../platform/files.js";

export interface KubeletConfigureOptions {
  root: string;
  kubeletConfig: string;
  write?: boolean;
  check?: boolean;
}

/** The backup's name: config.yaml.nodecert-backup-20260601T000000Z. */
export function backupName(file: string, now: Date): string {
  return `${file}.nodecert-backup-${now.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z")}`;
}

export async function kubeletConfigure(env: CliEnv, o: KubeletConfigureOptions): Promise<void> {
  const file = path.join(path.resolve(o.root), path.resolve("/", o.kubeletConfig));
  const shown = path.resolve("/", o.kubeletConfig);
  let text: string;
  let mode: number;
  try {
    [text, mode] = await Promise.all([fs.readFile(file, "utf8"), fs.stat(file).then((s) => s.mode & 0o7777)]);
  } catch (e) {
    env.stderr.write(`nodecert kubelet configure: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; pass --kubelet-config with the kubelet's --config file (kubeadm: /var/lib/kubelet/config.yaml)\n`);
    env.exitCode = 2;
    return;
  }
  let plan;
  try {
    plan = planKubeletConfig(text);
  } catch (e) {
    if (!(e instanceof KubeletConfigError)) throw e;
    env.stderr.write(`nodecert kubelet configure: ${file}: ${e.message}; nothing was changed\n`);
    env.exitCode = 2;
    return;
  }
  for (const n of plan.notes) env.stderr.write(`note: ${n}\n`);
  if (!plan.changes.length) {
    env.stdout.write(`${shown}: nothing to change: the kubelet uses the certificates nodecert manages\n`);
    return;
  }
  for (const c of plan.changes) env.stdout.write(`# ${c.key}: ${c.from === undefined ? "(unset)" : JSON.stringify(c.from)} -> ${JSON.stringify(c.to)} (${c.why})\n`);
  env.stdout.write(createTwoFilesPatch(`a${shown}`, `b${shown}`, text, plan.text, undefined, undefined, { context: 3 }));
  if (!o.write) {
    env.stdout.write(`dry run: nothing written; run again with --write to apply (a backup is kept)\n`);
    if (o.check) env.exitCode = 1;
    return;
  }
  const backup = backupName(file, env.now());
  await fs.copyFile(file, backup);
  await fs.chmod(backup, mode);
  await writeFileAtomic(file, plan.text, mode);
  env.stdout.write(`wrote ${shown} (backup: ${path.basename(backup)}); restart the kubelet once so it reads the new settings: systemctl restart kubelet\n`);
}
