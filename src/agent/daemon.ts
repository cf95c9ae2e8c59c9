// `nodecert agent`: the node daemon. Recovers from any interrupted install, then keeps the
// certificates valid on a schedule; joins when it has none and a token is configured. Serves
// /healthz, /readyz and /metrics on localhost and a control socket for `nodecert renew`.
import { serverFor } from "./servers.js";
import { uniform } from "../platform/random.js";
import type { AgentConfig } from "../config/agent.js";
import type { Logger } from "../platform/log.js";
import { controlSocketPath, layoutFor, type NodeLayout } from "./layout.js";
import { configuredIdentity, type HostFacts, type Identity } from "./identity.js";
import { NodeStore, type AgentState } from "./node-store.js";
import { startupRepairs } from "./state-repair.js";
import { DegradedStart } from "./degraded.js";
import { startHealthServer, type Readiness } from "./http/health.js";
import { AgentMetrics } from "./metrics.js";
import { Renewer } from "./renewer.js";
import { cronScheduler, validateSchedule, type ScheduledJob, type Scheduler } from "./scheduler.js";
import { startControlSocket, type ControlServer } from "./http/control.js";
import type { Exec } from "./hooks.js";
import type { CertKind } from "../pki/csr.js";
import { Channel } from "./channel/transport.js";
import { agentReadiness, systemdReporter } from "./readiness.js";
import { toClock, type ClockLike } from "../platform/clock.js";
import { notifySystemd, type NotifyResult, type NotifyState } from "../platform/sd-notify.js";
import type { CryptoReport } from "../crypto/fips-exec.js";
import { writeCryptoRecord } from "./crypto-record.js";
import { KubeletApply, type Probe } from "./kubelet-apply.js";

export interface AgentDeps {
  config: AgentConfig;
  logger: Logger;
  /** Time and timers; a plain now() gets real timers. */
  clock?: ClockLike;
  random?: () => number;
  hostFacts?: () => Promise<HostFacts>;
  /** Overrides how the node's identity is read (tests change addresses through it). */
  identity?: () => Promise<Identity>;
  /** Schedules a retry; injected so tests do not wait. */
  setTimer?: (fn: () => void, ms: number) => { cancel(): void };
  scheduler?: Scheduler;
  exec?: Exec;
  onInstalled?: (kinds: CertKind[], state: AgentState) => void;
  /** Reports readiness to systemd (Type=notify); default: systemd-notify when NOTIFY_SOCKET is set. */
  notify?: (state: NotifyState) => Promise<NotifyResult>;
  /** The full crypto report from startup: kept for `nodecert status` and exported as metrics. */
  cryptoReport?: CryptoReport;
  /** Reads the leaf the kubelet serves (verified apply); default: a TLS handshake. */
  kubeletProbe?: Probe;
}

export interface RunningAgent {
  layout: NodeLayout;
  healthPort: number;
  renewer: Renewer;
  metrics: AgentMetrics;
  /** Verified apply (agent.yaml kubelet:): checks that the kubelet serves what was installed. */
  kubeletApply: KubeletApply;
  channel: Channel | undefined;
  state(): AgentState | undefined;
  /** Resolves when the node holds certificates (immediately if it already did). */
  joined: Promise<AgentState>;
  readiness(): Promise<Readiness>;
  /** Runs the scheduled check now. */
  tick(): Promise<unknown>;
  reload(config: AgentConfig): void;
  close(): Promise<void>;
}

/** Settings bound at startup (listeners, the channel, the crypto provider): a reload keeps them. */
const RESTART_ONLY = ["stateDir", "healthListen", "controlSocket", "channel", "fips", "fipsProviderDir"] as const;

export { controlSocketPath } from "./layout.js";

export async function runAgent(d: AgentDeps): Promise<RunningAgent> {
  // The clock owns every timer of the agent (renewal retries, channel reconnects and heartbeats).
  const clock = toClock(d.clock);
  const random = d.random ?? uniform;
  const setTimer = d.setTimer ?? ((fn: () => void, ms: number) => clock.setTimeout(fn, ms));
  let config = d.config;
  validateSchedule(config.schedule);
  const layout = layoutFor(config);
  const log = d.logger;
  const store = new NodeStore(layout, { what: "agent", logger: log });
  for (const action of await store.recover(clock())) log.warn("startup recovery", { action });
  // Under the store's lock: the repairs rewrite state.json, which a one-shot renew may be writing.
  const repairs = await store.exclusive(() => startupRepairs(layout, { server: serverFor(config.server), caCertHash: config.caCertHash, now: clock() }, log));
  let state = await store.read();
  let resolveJoined!: (s: AgentState) => void;
  const installed = new Promise<AgentState>((r) => (resolveJoined = r));
  if (state?.certificates.client) resolveJoined(state);

  const metrics = new AgentMetrics(clock);
  metrics.setDangerWindow(config.dangerWindow);
  if (d.cryptoReport) {
    metrics.setCrypto(d.cryptoReport);
    await writeCryptoRecord(layout, d.cryptoReport, clock()).catch((e: Error) => log.warn("cannot record the crypto provider for 'nodecert status'", { error: e.message }));
  }
  const kubeletApply = new KubeletApply({ settings: () => config.kubelet, layout, logger: log, clock, setTimer, metrics, exec: d.exec, probe: d.kubeletProbe });
  let evicted = state?.evicted;
  let channel: Channel | undefined;
  let closing = false;
  const identity =
    d.identity ??
    configuredIdentity({ nodeName: () => config.nodeName ?? state?.nodeName, addresses: () => config.addresses, server: async () => serverFor(config.server ?? state?.server), facts: d.hostFacts });
  const renewer = new Renewer({
    config,
    layout,
    store,
    logger: log,
    clock,
    random,
    identity,
    setTimer,
    metrics,
    exec: d.exec,
    onInstalled: (kinds, s) => {
      state = s;
      resolveJoined(s);
      channel?.afterInstall(kinds);
      kubeletApply.afterInstall(kinds);
      void syncSystemd();
      d.onInstalled?.(kinds, s);
    },
  });
  const newChannel = () =>
    new Channel({
      store,
      logger: log,
      clock,
      random,
      renewer,
      identity,
      serverUrl: async (attempt?: number) => serverFor(config.server ?? (await store.read())?.server, attempt),
      options: { heartbeatMs: config.channel.heartbeat, reconnectInitialMs: config.channel.reconnectInitial, reconnectMaxMs: config.channel.reconnectMax },
      onEvicted: (reason) => (evicted = { at: clock().toISOString(), reason }),
    });
  if (config.channel.enabled && !evicted) channel = newChannel();

  // A read-only or full root does not stop the agent: it waits, not ready, and says why.
  const degraded = new DegradedStart({ layout, logger: log, clock, random, setTimer, backoff: config.backoff, onRecovered: () => void runCheck() });
  const readiness = agentReadiness({ renewer, evicted: () => evicted, degraded: () => degraded.reason, clock, dangerWindow: () => config.dangerWindow });
  const notify = d.notify ?? ((s: NotifyState) => notifySystemd(s));
  const syncSystemd = systemdReporter(readiness, notify, log);

  const health = await startHealthServer(config.healthListen, { joined: () => state?.certificates.client !== undefined, readiness, metrics });
  await degraded.start();
  let control: ControlServer | undefined;
  try {
    control = await startControlSocket(controlSocketPath(config, layout), renewer);
  } catch (e) {
    log.warn("control socket unavailable; 'nodecert renew' will run one-shot", { error: (e as Error).message });
  }

  const runCheck = async () => {
    try {
      if (degraded.reason) return { renewed: [], skipped: [], decisions: await renewer.evaluate(false) };
      // An evicted node keeps watching its certificates but asks for nothing, until an operator
      // re-joins it ('nodecert join' with a token bound to the node clears the mark on disk).
      if (evicted) {
        const onDisk = await store.readOrUndefined("checking whether the node was re-joined");
        if (!onDisk?.certificates.client || onDisk.evicted) return { renewed: [], skipped: [], decisions: await renewer.evaluate() };
        log.info("eviction lifted: the node was re-joined; renewing and connecting again", { node: onDisk.nodeName, clientSerial: onDisk.certificates.client.serial });
        evicted = undefined;
        state = onDisk;
        if (config.channel.enabled && !closing) {
          await channel?.stop();
          channel = newChannel();
          channel.start();
        }
      }
      await repairs.beforeCheck(state);
      return await renewer.tick();
    } catch (e) {
      log.error("certificate check failed", { error: (e as Error).message });
      return undefined;
    } finally {
      await syncSystemd();
    }
  };
  // "Joined" means certificates are installed and the run that installed them has finished.
  const joined = installed.then(async (s) => {
    await renewer.idle();
    return s;
  });
  const scheduler = d.scheduler ?? cronScheduler(log);
  let job: ScheduledJob = scheduler(config.schedule, runCheck);
  if (state?.keyAlgorithm && state.keyAlgorithm !== config.keyAlgorithm) {
    log.warn("using the key algorithm a rotation campaign set, not keyAlgorithm from the configuration", { inForce: state.keyAlgorithm, configured: config.keyAlgorithm });
  }
  log.info("agent started", { node: state?.nodeName ?? config.nodeName, root: layout.root, schedule: config.schedule, clientSerial: state?.certificates.client?.serial });
  if (!state && !(config.tokenFile && config.server && config.caCertHash)) {
    log.warn("node has no certificates and no join configuration: set server, caCertHash and tokenFile in agent.yaml, or run 'nodecert join'", { root: layout.root });
  }
  if (evicted) log.error("this node was evicted by the control plane; it will not renew or connect until it re-joins", { at: evicted.at, reason: evicted.reason });
  const firstCheck = runCheck();
  channel?.start();

  return {
    layout,
    healthPort: health.port,
    renewer,
    metrics,
    kubeletApply,
    get channel() {
      return channel;
    },
    state: () => state,
    joined,
    readiness,
    tick: runCheck,
    reload(next: AgentConfig) {
      validateSchedule(next.schedule);
      if (next.root !== config.root) log.warn("root cannot change on reload; restart the agent to move it", { root: config.root });
      // These are bound at startup (listeners, the channel, the crypto provider): say so rather
      // than pretend a reload applied them.
      const restartOnly = RESTART_ONLY.filter((k) => JSON.stringify(next[k]) !== JSON.stringify(config[k]));
      if (restartOnly.length) log.warn("some changed settings take effect only after a restart of the agent", { settings: restartOnly });
      const rescheduled = next.schedule !== config.schedule;
      config = { ...next, root: config.root, ...Object.fromEntries(RESTART_ONLY.map((k) => [k, config[k]])) };
      renewer.updateConfig(config);
      metrics.setDangerWindow(config.dangerWindow);
      if (rescheduled) {
        job.stop();
        job = scheduler(config.schedule, runCheck);
      }
      log.info("configuration reloaded", { schedule: config.schedule, rescheduled });
    },
    async close() {
      closing = true;
      await notify({ stopping: true, status: "stopping" }).catch((e: Error) => log.warn("could not tell systemd the agent is stopping", { error: e.message }));
      job.stop();
      degraded.stop();
      await channel?.stop();
      await firstCheck;
      await renewer.close();
      await kubeletApply.close();
      await control?.close();
      await health.close();
    },
  };
}
