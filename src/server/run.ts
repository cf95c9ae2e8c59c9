// Starts the control plane from its directory: config, CA, store, HTTPS API, fleet channel,
// rotation campaigns and CA rotation.
import path from "node:path";
import { promises as fs } from "node:fs";
import { randomBytes } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { loadYamlConfig } from "../config/load.js";
import { ServerConfig, parseListen } from "../config/server.js";
import type { Logger } from "../platform/log.js";
import { loadCa, type LoadedCa } from "./ca/ca.js";
import { serverPaths, type ServerPaths } from "./paths.js";
import { openStore, type OpenedStore } from "./store/open.js";
import type { EtcdStore } from "./store/etcd.js";
import type { ClusterHub } from "./fleet/replicas.js";
import type { CaSync } from "./ca/ca-sync.js";
import os from "node:os";
import type { Store } from "./store/store.js";
import { buildApi, serverTlsOptions } from "./http/routes-node.js";
import { processFips } from "../crypto/process.js";
import { keyAlgorithmProblem } from "./policy.js";
import { Authority, bundleSha256 } from "./ca/authority.js";
import { Hub } from "./fleet/hub.js";
import { Retention } from "./retention.js";
import { Campaigns, DEFAULT_CAMPAIGN_OPTIONS, type CampaignOptions } from "./fleet/campaigns.js";
import { CaRotation, completeInterruptedFinish } from "./fleet/ca-rotation.js";
import { registerAdminRoutes } from "./http/routes-admin.js";
import { registerSanRoutes } from "./san-admin.js";
import { serverSanPolicy } from "./san-registry.js";
import { toClock, type Timer } from "../platform/clock.js";
import { DEFAULT_SERVICE_CERT_CHECK_MS, ServiceCertRenewal, type SetTimer } from "./ca/service-cert-renewal.js";
import { ConnectionCap } from "./http/limits.js";
import { uniform } from "../platform/random.js";
import { ServerMetrics } from "./metrics/server-metrics.js";
import { observedStore } from "./metrics/observed-store.js";
import { startMetricsListener, type MetricsListener } from "./metrics/http.js";

export interface RunOptions {
  dir: string;
  listen?: string;
  logger: Logger;
  clock?: () => Date;
  random?: (n: number) => Uint8Array;
  /** Overrides parts of server.yaml (tests). */
  configOverrides?: Record<string, unknown>;
  heartbeatMs?: number;
  campaignOptions?: Partial<CampaignOptions>;
  /** Runs on the FIPS provider (default: what this process's crypto report says). */
  fips?: boolean;
  /** Schedules the check of the server's own certificates (tests: capture and fire by hand). */
  setTimer?: SetTimer;
  /** How often the server's TLS and admin certificates are checked (default hourly). */
  serviceCertCheckMs?: number;
}

/** Replicas on etcd: this replica's view of the others. */
export interface ReplicaView {
  name: string;
  cluster: ClusterHub;
  isLeader(): boolean;
}

export interface RunningServer {
  app: FastifyInstance;
  url: string;
  port: number;
  paths: ServerPaths;
  config: ServerConfig;
  /** The CA that signs right now (changes during a CA rotation). */
  readonly ca: LoadedCa;
  authority: Authority;
  store: Store;
  hub: Hub;
  /** Connections per source on the HTTPS listener. */
  connectionCap: ConnectionCap;
  campaigns: Campaigns;
  caRotation: CaRotation;
  /** Keeps the server's TLS and admin certificates valid (checked at start and on a timer). */
  serviceCerts: ServiceCertRenewal;
  /** Whether the store answers (etcd); nothing is signed while it does not. */
  readiness: OpenedStore["readiness"];
  /** Set when the store is etcd (several replicas may share it). */
  replicas?: ReplicaView;
  metrics: ServerMetrics;
  /** The port of the /metrics listener (undefined when metrics are off or could not listen). */
  metricsPort: number | undefined;
  /** Prunes old issuance and audit records (after exporting the audit). */
  retention: Retention;
  close(): Promise<void>;
}

export async function runServer(o: RunOptions): Promise<RunningServer> {
  const paths = serverPaths(o.dir);
  const config = loadYamlConfig(ServerConfig, paths.config, { ...(o.configOverrides ?? {}), listen: o.listen });
  const clock = o.clock ?? (() => new Date());
  const random = o.random ?? ((n: number) => randomBytes(n));
  const fips = o.fips ?? processFips();
  if (config.requireFipsNodes && !fips) o.logger.warn("requireFipsNodes is set but this server does not run on the FIPS provider; set fips: on so the control plane is FIPS too");
  const opened = await openStore(config.store, paths);
  const rawStore = opened.store;
  const metrics = new ServerMetrics();
  // Everything the server does goes through the observed store, so issuance, denials, token
  // failures and store latency are counted in one place.
  const store: Store = observedStore(rawStore, metrics);
  const replicaName = config.store.kind === "etcd" ? (config.store.replicaName ?? `${os.hostname()}-${config.listen}`) : "local";
  // A CA rotation killed between its two file moves left ca-next/ where ca/ belongs: finish the move.
  if (await completeInterruptedFinish(paths)) o.logger.warn("CA rotation: finished moving the new CA into place after an interrupted finish", { dir: paths.caDir });
  // Replicas share one CA through etcd: adopt it (or publish ours when there is none) before loading.
  let caSync: CaSync | undefined;
  if (config.store.kind === "etcd") {
    const { CaSync } = await import("./ca/ca-sync.js");
    caSync = new CaSync({ store: rawStore as EtcdStore, paths, logger: o.logger, replica: replicaName });
    await caSync.adoptOrPublish(clock());
  }
  const authority = new Authority(await loadCa(paths));
  const sanPolicy = { ...config.policy, ...serverSanPolicy(config) };
  // What the server presents: its certificate file, then (once a rotation's new CA signs) the
  // cross-certificate that lets nodes anchored in the old CA verify it.
  const servedTls = async () => ({ certPem: (await fs.readFile(paths.tlsCert, "utf8")) + authority.tlsChainExtra, keyPem: await fs.readFile(paths.tlsKey, "utf8") });
  const connectionCap = new ConnectionCap(config.limits, o.logger, () => clock().getTime());
  const hub = new Hub({ store, authority, logger: o.logger, clock, heartbeatMs: o.heartbeatMs ?? 30_000, limits: config.channel, onChannelOpen: (socket) => connectionCap.release(socket) });
  let cluster: ClusterHub | undefined;
  if (config.store.kind === "etcd") {
    const { ClusterHub } = await import("./fleet/replicas.js");
    cluster = new ClusterHub({ store: rawStore as EtcdStore, hub, replica: replicaName, logger: o.logger, ttlSeconds: Math.max(1, Math.round(config.store.leaderTtl / 1000)) });
  }
  const isLeader = () => cluster?.isLeader() ?? true;
  const campaignOptions = { ...DEFAULT_CAMPAIGN_OPTIONS, ...(cluster ? { orphanGraceMs: 5000 } : {}), ...(o.campaignOptions ?? {}) };
  const campaigns = new Campaigns({ store, hub: cluster ?? hub, logger: o.logger, clock, random: uniform, options: campaignOptions, isLeader });
  let app: FastifyInstance | undefined;
  // Hot-swaps the TLS identity and client-CA list into the listening server; before it listens,
  // buildApi reads the files itself.
  const reloadTls = async () => {
    const tls = await servedTls();
    app?.server && (app.server as unknown as import("node:tls").Server).setSecureContext({ key: tls.keyPem, cert: tls.certPem, ca: authority.trustBundle + authority.intermediates, ...serverTlsOptions(fips) });
  };
  // Without an injected setTimer the service-cert checks run on the clock's timers.
  const serviceCerts = new ServiceCertRenewal({ paths, store, authority, logger: o.logger, clock, random, sans: config.sans, reloadTls, setTimer: o.setTimer, intervalMs: o.serviceCertCheckMs ?? DEFAULT_SERVICE_CERT_CHECK_MS });
  const caRotation = new CaRotation({
    store,
    authority,
    hub,
    campaigns,
    paths,
    logger: o.logger,
    clock,
    random,
    ensureServiceCertificates: (trigger) => serviceCerts.check(trigger),
    servedChain: async () => (await servedTls()).certPem,
    maxInFlight: config.caRotation.maxInFlight,
    autoAdvance: config.caRotation.autoAdvance,
    reloadTls,
    isLeader,
    publish: caSync ? (st) => caSync!.publish(st) : undefined,
  });
  await caRotation.resume(authority.signer);
  // Before serving: a certificate issued a year ago at init, or for other SANs, or by a CA that no
  // longer signs, is re-issued now. A failure is logged and retried by the timer; the files on
  // disk are served meanwhile.
  await serviceCerts.check("startup").catch(() => undefined);
  app = await buildApi({
    config,
    authority,
    store,
    logger: o.logger,
    clock,
    random,
    tls: await servedTls(),
    fips,
    readiness: opened.readiness,
    registerAdmin: (a) => {
      registerSanRoutes(a, { store, policy: sanPolicy, clock, logger: o.logger });
      registerAdminRoutes(a, {
        store,
        hub: cluster ?? hub,
        campaigns,
        caRotation,
        logger: o.logger,
        clock,
        autoAdvance: config.caRotation.autoAdvance,
        keyAlgorithmProblem: (alg) => keyAlgorithmProblem(alg, { ...config.policy, fips }),
      });
    },
  });
  hub.attach(app.server);
  connectionCap.attach(app.server);
  // A node whose trust bundle is stale (offline during a CA rotation, say) gets the current one.
  hub.on("hello", (node, hello) => {
    if (hello.trustBundleSha256 !== bundleSha256(authority.trustBundle)) hub.pushTrustBundle(node, authority.trustBundleMessage());
  });
  const { host, port } = parseListen(config.listen);
  try {
    await app.listen({ host, port });
  } catch (e) {
    await hub.close();
    await store.close();
    const err = e as NodeJS.ErrnoException;
    if (err.code === "EADDRINUSE") throw new Error(`cannot listen on ${config.listen}: the address is in use; stop the other process or pass --listen`, { cause: e });
    throw e;
  }
  if (cluster && caSync) {
    // Fleet work runs on the leader only: it resumes campaigns (and settles what a dead leader left
    // in flight) when elected, and advances CA rotation phases on its tick.
    let caTick: Timer | undefined;
    cluster.onLeadership = (leader) => {
      caTick?.cancel();
      if (!leader) return campaigns.stop();
      void campaigns.resume().catch((e) => o.logger.error("could not resume campaigns as the new leader", { error: (e as Error).message }));
      if (config.caRotation.autoAdvance) {
        caTick = toClock(clock).setInterval(() => void caRotation.advance(false).catch((e) => o.logger.error("CA rotation step failed", { error: (e as Error).message })), campaignOptions.tickMs, { unref: true });
      }
    };
    await caSync.watch((snap) => caRotation.reload(snap.rotation as import("./fleet/ca-rotation.js").CaRotationState | undefined));
    await cluster.start();
  } else await campaigns.resume();
  serviceCerts.start();
  metrics.attach({ store: rawStore, connectedNodes: () => hub.connectedNodes(), caRotation, trustBundle: () => authority.trustBundle, intermediates: () => authority.intermediates });
  let metricsListener: MetricsListener | undefined;
  if (config.metrics.enabled) {
    // Metrics are for people watching: an address in use is a warning, never a control plane down.
    metricsListener = await startMetricsListener(config.metrics.listen, () => metrics.render()).catch((e: Error) => {
      o.logger.warn("cannot serve /metrics; the control plane runs without it", { listen: config.metrics.listen, error: e.message });
      return undefined;
    });
    if (metricsListener) o.logger.info("metrics listening", { listen: config.metrics.listen.replace(/:\d+$/, `:${metricsListener.port}`), path: "/metrics" });
  }
  // Its own timer: the injected one (tests) drives the service-certificate checks alone.
  const retentionTimer: SetTimer = (fn, ms) => toClock(clock).setTimeout(fn, ms, { unref: true });
  const retention = new Retention({ store, policy: config.retention, archiveDir: config.retention.auditArchiveDir ?? path.join(paths.dir, "audit-archive"), clock, logger: o.logger, setTimer: retentionTimer });
  if (!cluster) retention.start();
  else {
    // Replicas: retention starts on the first replica elected leader (one audit archive, not one per replica).
    let retentionStarted = false;
    const startRetention = () => {
      if (retentionStarted) return;
      retentionStarted = true;
      retention.start();
    };
    const prev = cluster.onLeadership;
    cluster.onLeadership = (leader) => {
      prev(leader);
      if (leader) startRetention();
    };
    if (cluster.isLeader()) startRetention();
  }
  const addr = app.server.address();
  const boundPort = typeof addr === "object" && addr ? addr.port : port;
  const urlHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
  o.logger.info("control plane listening", { listen: `${host}:${boundPort}`, caPin: authority.signer.pin, tls: "TLSv1.3 only", fips, requireFipsNodes: config.requireFipsNodes });
  const running = app;
  return {
    app: running,
    url: `https://${urlHost}:${boundPort}`,
    port: boundPort,
    paths,
    config,
    get ca() {
      return authority.signer;
    },
    authority,
    store,
    hub,
    connectionCap,
    campaigns,
    caRotation,
    serviceCerts,
    readiness: opened.readiness,
    replicas: cluster ? { name: replicaName, cluster, isLeader } : undefined,
    metrics,
    metricsPort: metricsListener?.port,
    retention,
    async close() {
      await metricsListener?.close();
      serviceCerts.stop();
      await retention.stop();
      campaigns.stop();
      await cluster?.close();
      await caSync?.close();
      await hub.close();
      await running.close();
      await serviceCerts.idle(); // a re-issue in flight still writes to the store
      await store.close();
    },
  };
}
