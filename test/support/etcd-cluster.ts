// A real 3-member etcd 3.4 cluster (Debian etcd-server) on loopback ports, TLS everywhere: clients
// authenticate with a certificate (mTLS, as the apiserver does) and members talk peer TLS. The
// certificates are made with the openssl CLI in a temp dir. Heartbeat and election are tuned for
// loopback so a cluster is up in about a second and a leader loss is noticed fast.
import { spawn, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import type { Context } from "mocha";
import { freePort, hasTool, run, tempDir } from "./helpers.js";
import { until } from "./fleet.js";

export interface EtcdTls {
  ca: string;
  cert: string;
  key: string;
}

export interface EtcdMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  running(): boolean;
  /** SIGKILL, then waits for the exit. */
  kill(): Promise<void>;
  /** Starts it again on the same data dir and ports (rejoins the cluster). */
  start(): Promise<void>;
}

export interface EtcdCluster {
  members: EtcdMember[];
  endpoints: string[];
  /** A client certificate the cluster accepts (for nodecert replicas). */
  clientTls: EtcdTls;
  dir: string;
  /** Runs etcdctl against the cluster with the client certificate. */
  etcdctl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  stop(): Promise<void>;
}

/** In CI a missing etcd fails the test; elsewhere it skips and says why. */
export function requireEtcd(ctx: Context): void {
  if (hasTool("etcd") && hasTool("etcdctl") && hasTool("openssl")) return;
  if (process.env.CI === "true") throw new Error("etcd, etcdctl and openssl are required in CI (scripts/test-deps.sh installs etcd-server and etcd-client)");
  console.log("      skipped: etcd/etcdctl (Debian etcd-server, etcd-client) is not installed");
  ctx.skip();
}

async function openssl(args: string[], cwd: string): Promise<void> {
  const r = await run("openssl", args, { cwd });
  if (r.code !== 0) throw new Error(`openssl ${args.join(" ")} failed: ${r.stderr}`);
}

/** A CA, a member certificate (server + client EKU, loopback SANs, used for client and peer TLS) and a client certificate. */
export async function makeEtcdCerts(dir: string): Promise<{ ca: string; member: EtcdTls; client: EtcdTls }> {
  await openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=etcd-test-ca"], dir);
  const leaf = async (name: string, ext: string) => {
    writeFileSync(path.join(dir, `${name}.ext`), ext);
    await openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`], dir);
    await openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", `${name}.crt`, "-days", "2", "-extfile", `${name}.ext`], dir);
  };
  await leaf("member", "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n");
  await leaf("nodecert", "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n");
  const f = (n: string) => path.join(dir, n);
  return { ca: f("ca.crt"), member: { ca: f("ca.crt"), cert: f("member.crt"), key: f("member.key") }, client: { ca: f("ca.crt"), cert: f("nodecert.crt"), key: f("nodecert.key") } };
}

export async function startEtcdCluster(o: { size?: number } = {}): Promise<EtcdCluster> {
  const size = o.size ?? 3;
  const dir = tempDir("nodecert-etcd-");
  const certs = await makeEtcdCerts(dir);
  const ports: { client: number; peer: number }[] = [];
  for (let i = 0; i < size; i++) ports.push({ client: await freePort(), peer: await freePort() });
  const names = ports.map((_, i) => `m${i + 1}`);
  const initialCluster = names.map((n, i) => `${n}=https://127.0.0.1:${ports[i].peer}`).join(",");
  const token = `nodecert-test-${path.basename(dir)}`;
  const members: EtcdMember[] = names.map((name, i) => {
    let child: ChildProcess | undefined;
    let exited: Promise<void> = Promise.resolve();
    let alive = false;
    let log = "";
    const clientUrl = `https://127.0.0.1:${ports[i].client}`;
    const peerUrl = `https://127.0.0.1:${ports[i].peer}`;
    const args = [
      "--name", name,
      "--data-dir", path.join(dir, `${name}.etcd`),
      "--listen-client-urls", clientUrl,
      "--advertise-client-urls", clientUrl,
      "--listen-peer-urls", peerUrl,
      "--initial-advertise-peer-urls", peerUrl,
      "--initial-cluster", initialCluster,
      "--initial-cluster-state", "new",
      "--initial-cluster-token", token,
      "--cert-file", certs.member.cert,
      "--key-file", certs.member.key,
      "--trusted-ca-file", certs.ca,
      "--client-cert-auth",
      "--peer-cert-file", certs.member.cert,
      "--peer-key-file", certs.member.key,
      "--peer-trusted-ca-file", certs.ca,
      "--peer-client-cert-auth",
      // Loopback: 50 ms heartbeats, 500 ms election (defaults 100/1000 are for real networks).
      "--heartbeat-interval", "50",
      "--election-timeout", "500",
      "--snapshot-count", "10000",
      "--logger", "zap",
      "--log-level", "error",
    ];
    return {
      name,
      clientUrl,
      peerUrl,
      running: () => alive,
      async start() {
        const c = spawn("etcd", args, { stdio: ["ignore", "pipe", "pipe"] });
        child = c;
        alive = true;
        c.stdout!.on("data", (d) => (log = (log + d).slice(-20_000)));
        c.stderr!.on("data", (d) => (log = (log + d).slice(-20_000)));
        exited = new Promise((r) =>
          c.once("exit", () => {
            alive = false;
            r();
          }),
        );
      },
      async kill() {
        child?.kill("SIGKILL");
        await exited;
      },
      toString: () => `${name} ${clientUrl}\n${log}`,
    } as EtcdMember;
  });
  const endpoints = members.map((m) => m.clientUrl);
  const etcdctl = (args: string[]) =>
    run("etcdctl", ["--endpoints", endpoints.join(","), "--cacert", certs.client.ca, "--cert", certs.client.cert, "--key", certs.client.key, "--dial-timeout", "2s", "--command-timeout", "3s", ...args], {
      env: { ETCDCTL_API: "3" },
      timeoutMs: 15_000,
    });
  const cluster: EtcdCluster = {
    members,
    endpoints,
    clientTls: certs.client,
    dir,
    etcdctl,
    async stop() {
      await Promise.all(members.map((m) => m.kill()));
    },
  };
  await Promise.all(members.map((m) => m.start()));
  try {
    await until(
      "the etcd cluster healthy",
      async () => {
        for (const m of members) if (!m.running()) throw new Error(`etcd member exited:\n${String(m)}`);
        const r = await run("etcdctl", ["--endpoints", endpoints.join(","), "--cacert", certs.client.ca, "--cert", certs.client.cert, "--key", certs.client.key, "--command-timeout", "2s", "endpoint", "health"], { env: { ETCDCTL_API: "3" }, timeoutMs: 10_000 });
        return r.code === 0;
      },
      60_000,
    );
  } catch (e) {
    await cluster.stop();
    throw e;
  }
  return cluster;
}

/** server.yaml's `store` for a replica on this cluster (its own prefix per test). */
export function etcdStoreConfig(cluster: EtcdCluster, prefix: string, replicaName: string, o: { endpoints?: string[]; leaderTtl?: string; probeInterval?: string; requestTimeout?: string } = {}): Record<string, unknown> {
  return {
    kind: "etcd",
    endpoints: o.endpoints ?? cluster.endpoints,
    prefix,
    tls: { ca: cluster.clientTls.ca, cert: cluster.clientTls.cert, key: cluster.clientTls.key },
    replicaName,
    leaderTtl: o.leaderTtl ?? "2s",
    probeInterval: o.probeInterval ?? "200ms",
    requestTimeout: o.requestTimeout ?? "1500ms",
  };
}
