// Rotation campaigns: rotate a set of nodes with at most K in flight. A node is done when it
// acks with new serials this server issued to it; timeouts retry with backoff, then fail the node
// with the reason. State lives in the store, so a restarted server resumes where it stopped.
import { randomUUID } from "node:crypto";
import type { Logger } from "../../platform/log.js";
import { formatDuration } from "../../config/duration.js";
import type { Ack } from "../../protocol/channel.js";
import type { KeyAlgorithm } from "../../pki/key-algorithms.js";
import type { CampaignNodeRecord, CampaignRecord, Store } from "../store/store.js";
import type { Hub } from "./hub.js";
import { backoffDelay } from "../../platform/backoff.js";

export interface CampaignOptions {
  /** How long a node may take to ack a rotate command. */
  commandTimeoutMs: number;
  maxAttempts: number;
  /** Retry n waits a random time in [0, min(retryMaxMs, retryBaseMs * 2^(n-1))] (full jitter). */
  retryBaseMs: number;
  retryMaxMs: number;
  /** How often timeouts and retries are checked. */
  tickMs: number;
}

export const DEFAULT_CAMPAIGN_OPTIONS: CampaignOptions = { commandTimeoutMs: 120_000, maxAttempts: 3, retryBaseMs: 10_000, retryMaxMs: 300_000, tickMs: 1000 };

export interface StartCampaign {
  nodes: string[] | "all";
  maxInFlight: number;
  which: ("client" | "serving")[];
  keyAlgorithm?: KeyAlgorithm;
  reason: string;
}

export interface CampaignStatus {
  campaign: CampaignRecord;
  counts: Record<CampaignNodeRecord["state"], number>;
  nodes: CampaignNodeRecord[];
}

export class Campaigns {
  private pumping: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  /** Highest number of nodes seen in flight at once, per campaign (observability, tests). */
  readonly maxObservedInFlight = new Map<string, number>();
  /** Called when a campaign finishes (CA rotation waits on its re-issue campaign). */
  onFinished: (c: CampaignRecord) => void = () => {};

  constructor(
    private readonly d: { store: Store; hub: Hub; logger: Logger; clock: () => Date; options: CampaignOptions; /** Uniform in [0, 1): retry jitter. */ random?: () => number },
  ) {
    d.hub.on("connect", () => void this.pump());
    d.hub.on("disconnect", (node) => void this.serial(() => this.onDisconnect(node)));
    d.hub.on("ack", (node, ack) => void this.serial(() => this.onAck(node, ack)).then(() => this.pump()));
  }

  /** Resumes running campaigns after a restart: commands in flight died with the old process. */
  async resume(): Promise<void> {
    await this.serial(async () => {
      for (const c of await this.d.store.listCampaigns()) {
        if (c.state !== "running") continue;
        // The crash, not the node, cut these attempts short: refunded, as on a disconnect.
        for (const n of await this.d.store.listCampaignNodes(c.id, { state: "in-flight" })) {
          await this.d.store.updateCampaignNode(c.id, n.node, { state: "pending", commandId: undefined, attempts: Math.max(0, n.attempts - 1) });
        }
        this.d.logger.info("resuming rotation campaign", { campaign: c.id });
      }
    });
    this.timer = setInterval(() => void this.pump(), this.d.options.tickMs);
    this.timer.unref();
    await this.pump();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  async start(o: StartCampaign): Promise<CampaignRecord> {
    const known = (await this.d.store.listNodes()).filter((n) => !n.evictedAt).map((n) => n.name);
    const nodes = o.nodes === "all" ? known : o.nodes;
    const unknown = nodes.filter((n) => !known.includes(n));
    if (unknown.length) throw new Error(`unknown or evicted nodes: ${unknown.join(", ")}`);
    if (!nodes.length) throw new Error("no nodes to rotate");
    const c: CampaignRecord = { id: randomUUID().slice(0, 8), createdAt: this.d.clock(), state: "running", maxInFlight: o.maxInFlight, reason: o.reason, which: o.which, keyAlgorithm: o.keyAlgorithm };
    await this.d.store.createCampaign(c, [...new Set(nodes)]);
    this.d.logger.info("rotation campaign started", { campaign: c.id, nodes: nodes.length, maxInFlight: c.maxInFlight, reason: c.reason });
    await this.pump();
    return c;
  }

  async status(id: string): Promise<CampaignStatus | undefined> {
    const campaign = await this.d.store.getCampaign(id);
    if (!campaign) return undefined;
    const nodes = await this.d.store.listCampaignNodes(id);
    const counts = { pending: 0, "in-flight": 0, done: 0, failed: 0 };
    for (const n of nodes) counts[n.state]++;
    return { campaign, counts, nodes };
  }

  /**
   * Stops a running campaign: no further node is sent a command, and acks of commands already out
   * no longer count for it. Nodes keep the certificates they have.
   */
  async cancel(id: string, reason: string): Promise<{ code: "ok" | "unknown-campaign" | "not-running"; campaign?: CampaignRecord }> {
    return this.serial(async () => {
      const c = await this.d.store.getCampaign(id);
      if (!c) return { code: "unknown-campaign" as const };
      if (c.state !== "running") return { code: "not-running" as const, campaign: c };
      const now = this.d.clock();
      await this.d.store.updateCampaign(id, { state: "cancelled", finishedAt: now });
      this.d.logger.info("rotation campaign cancelled", { campaign: id, reason });
      const done = { ...c, state: "cancelled" as const, finishedAt: now };
      this.onFinished(done);
      return { code: "ok" as const, campaign: done };
    });
  }

  /** Runs `fn` after every earlier state change, so decisions never interleave. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.pumping.catch(() => undefined).then(fn);
    this.pumping = run.then(
      () => undefined,
      (e) => void this.d.logger.error("campaign step failed", { error: (e as Error).message }),
    );
    return run;
  }

  pump(): Promise<void> {
    return this.serial(() => this.step());
  }

  // A step runs on every connect, ack and tick, so it reads only the nodes in flight (at most K)
  // and as many pending ones as there are free slots, never the whole campaign. Reading every node
  // each time (and again per ack and disconnect) made a campaign O(N²): with 1,000 nodes the server
  // spent 79 ms of CPU per rotation instead of 48, the difference synchronous SQLite reads that
  // block the event loop serving the channel (docs/BENCHMARKS.md, fleet section).
  private async step(): Promise<void> {
    const now = this.d.clock();
    for (const c of await this.d.store.listCampaigns()) {
      if (c.state !== "running") continue;
      let inFlight = 0;
      for (const n of await this.d.store.listCampaignNodes(c.id, { state: "in-flight" })) {
        if (n.startedAt && now.getTime() - n.startedAt.getTime() > this.d.options.commandTimeoutMs) {
          await this.attemptFailed(c, n, `no ack within ${formatDuration(this.d.options.commandTimeoutMs)}`);
        } else inFlight++;
      }
      // Pending nodes page by page in name order; offline or not-yet-due ones are skipped.
      let after: string | undefined;
      while (inFlight < c.maxInFlight) {
        const limit = Math.max(64, 2 * (c.maxInFlight - inFlight));
        const page = await this.d.store.listCampaignNodes(c.id, { state: "pending", after, limit });
        for (const n of page) {
          if (inFlight >= c.maxInFlight) break;
          if ((n.nextAttemptAt && n.nextAttemptAt > now) || !this.d.hub.connected(n.node)) continue;
          const commandId = this.d.hub.send(n.node, { type: "rotate", which: c.which, reason: `campaign ${c.id}: ${c.reason}`, keyAlgorithm: c.keyAlgorithm as KeyAlgorithm | undefined });
          if (!commandId) continue;
          await this.d.store.updateCampaignNode(c.id, n.node, { state: "in-flight", commandId, startedAt: now, attempts: n.attempts + 1 });
          inFlight++;
        }
        if (page.length < limit) break;
        after = page[page.length - 1].node;
      }
      this.maxObservedInFlight.set(c.id, Math.max(this.maxObservedInFlight.get(c.id) ?? 0, inFlight));
      if (inFlight > 0) continue;
      const counts = await this.d.store.countCampaignNodes(c.id);
      if (counts.pending === 0) {
        await this.d.store.updateCampaign(c.id, { state: "done", finishedAt: now });
        const failed = await this.d.store.listCampaignNodes(c.id, { state: "failed" });
        this.d.logger.info("rotation campaign finished", { campaign: c.id, done: counts.done, failed: failed.map((f) => `${f.node}: ${f.lastError}`) });
        this.onFinished({ ...c, state: "done", finishedAt: now });
      }
    }
  }

  private async attemptFailed(c: CampaignRecord, n: CampaignNodeRecord, reason: string): Promise<void> {
    if (n.attempts >= this.d.options.maxAttempts) {
      await this.d.store.updateCampaignNode(c.id, n.node, { state: "failed", lastError: `${reason} (after ${n.attempts} attempts)`, finishedAt: this.d.clock(), commandId: undefined });
      this.d.logger.warn("node failed its rotation", { campaign: c.id, node: n.node, reason, attempts: n.attempts });
      return;
    }
    // Capped and jittered like the agent's reconnects: nodes that failed together (a server
    // restart, a network blip) do not all come back in the same tick.
    const delay = backoffDelay(n.attempts - 1, { baseMs: this.d.options.retryBaseMs, capMs: this.d.options.retryMaxMs, random: this.d.random });
    await this.d.store.updateCampaignNode(c.id, n.node, { state: "pending", lastError: reason, commandId: undefined, nextAttemptAt: new Date(this.d.clock().getTime() + delay) });
    this.d.logger.warn("node rotation attempt failed; will retry", { campaign: c.id, node: n.node, reason, attempt: n.attempts, retryInMs: delay });
  }

  private async onDisconnect(node: string): Promise<void> {
    for (const c of await this.d.store.listCampaigns()) {
      if (c.state !== "running") continue;
      const n = await this.d.store.getCampaignNode(c.id, node);
      // The agent drops its connection to reconnect with a new certificate; its ack may already
      // be in. Otherwise the command is lost: try again when it is back, without counting it.
      if (n?.state === "in-flight") await this.d.store.updateCampaignNode(c.id, node, { state: "pending", commandId: undefined, attempts: Math.max(0, n.attempts - 1) });
    }
  }

  private async onAck(node: string, ack: Ack): Promise<void> {
    for (const c of await this.d.store.listCampaigns()) {
      if (c.state !== "running") continue;
      const n = await this.d.store.getCampaignNode(c.id, node);
      if (!n || n.commandId !== ack.commandId) continue;
      if (ack.result !== "ok") return this.attemptFailed(c, n, `agent reported: ${ack.error ?? "error"}`);
      const problems: string[] = [];
      for (const kind of c.which) {
        const serial = ack.serials?.[kind];
        const rec = serial ? await this.d.store.getCertificate(serial) : undefined;
        if (!serial) problems.push(`no new ${kind} serial in the ack`);
        else if (!rec || rec.node !== node || rec.kind !== kind) problems.push(`${kind} serial ${serial} was not issued by this server to ${node}`);
        else if (n.startedAt && rec.issuedAt < n.startedAt) problems.push(`${kind} serial ${serial} predates this rotation`);
      }
      if (problems.length) return this.attemptFailed(c, n, problems.join("; "));
      await this.d.store.updateCampaignNode(c.id, node, { state: "done", finishedAt: this.d.clock(), serials: ack.serials, lastError: undefined });
      this.d.logger.info("node rotated", { campaign: c.id, node, serials: ack.serials });
      return;
    }
  }
}
