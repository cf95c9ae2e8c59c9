// Several nodecert server replicas (in this process) on one etcd prefix, sharing one
// key-encryption key as an operator would copy it to each control-plane machine.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { startServer, tempDir, type FakeClock, type TestServer } from "./helpers.js";
import { etcdStoreConfig, type EtcdCluster } from "./etcd-cluster.js";
import type { CampaignOptions } from "../../src/server/fleet/campaigns.js";

export function freshPrefix(): string {
  return `/nodecert-test/${randomBytes(4).toString("hex")}/`;
}

/** A server dir whose kek is `kek` (so it can open the CA sealed in etcd). */
export function replicaDir(kek?: Buffer): string {
  const dir = path.join(tempDir(), "server");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (kek) writeFileSync(path.join(dir, "kek"), kek, { mode: 0o600 });
  return dir;
}

export async function startReplicas(cluster: EtcdCluster, n: number, o: { prefix?: string; clock?: FakeClock; campaignOptions?: Partial<CampaignOptions>; endpoints?: (i: number) => string[] } = {}): Promise<TestServer[]> {
  const prefix = o.prefix ?? freshPrefix();
  const out: TestServer[] = [];
  let kek: Buffer | undefined;
  for (let i = 0; i < n; i++) {
    const dir = replicaDir(kek);
    const s = await startServer({ dir, clock: o.clock, campaignOptions: o.campaignOptions, overrides: { store: etcdStoreConfig(cluster, prefix, `replica-${i}`, { endpoints: o.endpoints?.(i) }) } });
    kek ??= readFileSync(path.join(dir, "kek"));
    out.push(s);
  }
  return out;
}

/** `nodecert server run` processes (bin/nodecert) on one etcd prefix, started in order, sharing one kek. */
export async function replicaProcesses(cluster: EtcdCluster, n: number, o: { prefix?: string; config?: Record<string, unknown> } = {}): Promise<import("./server-process.js").ServerProcess[]> {
  const { serverProcess } = await import("./server-process.js");
  const prefix = o.prefix ?? freshPrefix();
  const out = [];
  let kek: Buffer | undefined;
  for (let i = 0; i < n; i++) {
    const p = await serverProcess({ kek, config: { ...(o.config ?? {}), store: etcdStoreConfig(cluster, prefix, `replica-${i}`) } });
    await p.start();
    kek ??= readFileSync(path.join(p.dir, "kek"));
    out.push(p);
  }
  return out;
}
