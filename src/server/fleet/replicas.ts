// Several replicas on one etcd prefix: which replica each agent's channel is open on, commands for
// an agent on another replica (an etcd watch on that replica's command prefix) with their acks
// coming back the same way, and one leader for fleet work (an etcd election on a lease: when the
// leader dies its lease expires and another replica is elected within the TTL).
//
// Keys (under the store prefix):
//   replicas/<replica>            this replica is alive (on its lease)
//   conns/<node>                  { replica } the agent's channel is open there (on that replica's lease)
//   cmds/<replica>/<id>           { node, msg, from } a command for an agent connected to <replica>
//   acks/<replica>/<id>           { node, ack } the agent's ack, back to the replica that sent the command
import { EventEmitter } from "node:events";
import { randomUUID } from "node:crypto";
import type { Campaign, Election, Lease, Watcher } from "etcd3";
import type { Ack } from "../../protocol/channel.js";
import type { Logger } from "../../platform/log.js";
import type { EtcdStore } from "../store/etcd.js";
import type { Hub, HubEvents } from "./hub.js";
import { CLOSE_EVICTED } from "../../protocol/channel.js";

/** What fleet work needs of the channel: the local Hub, or the ClusterHub over every replica. */
export interface FleetHub {
  connected(node: string): boolean;
  send(node: string, msg: Parameters<Hub["send"]>[1]): string | undefined;
  on<E extends keyof HubEvents>(event: E, listener: (...args: HubEvents[E]) => void): unknown;
}

type Outbound = Parameters<Hub["send"]>[1];

export interface ReplicaDeps {
  store: EtcdStore;
  hub: Hub;
  replica: string;
  logger: Logger;
  /** Seconds a dead replica keeps its leadership and its agents' entries (etcd lease TTL). */
  ttlSeconds: number;
}

/**
 * The channel seen from this replica across all of them: `connected` is true for an agent on any
 * replica, `send` reaches it wherever it is, and acks of commands sent from here come back here.
 */
export class ClusterHub extends EventEmitter<HubEvents> implements FleetHub {
  private lease: Lease | undefined;
  private readonly remote = new Map<string, string>(); // node → replica (other replicas only)
  /** Commands delivered here for another replica: local id → where to send the ack. */
  private readonly relayed = new Map<string, { from: string; id: string }>();
  private watchers: Watcher[] = [];
  private election: Election | undefined;
  private campaign: Campaign | undefined;
  private leading = false;
  private closed = false;
  /** Called when this replica becomes leader (true) or stops being it (false). */
  onLeadership: (leader: boolean) => void = () => {};

  constructor(private readonly d: ReplicaDeps) {
    super();
    d.hub.on("connect", (node) => {
      this.remote.delete(node);
      void this.putConn(node);
      this.emit("connect", node);
    });
    d.hub.on("disconnect", (node) => {
      void this.dropConn(node);
      this.emit("disconnect", node);
    });
    d.hub.on("hello", (node, h) => this.emit("hello", node, h));
    d.hub.on("status", (node) => this.emit("status", node));
    d.hub.on("ack", (node, ack) => {
      const relay = this.relayed.get(ack.commandId);
      if (!relay) return void this.emit("ack", node, ack);
      this.relayed.delete(ack.commandId);
      void this.call("relay an ack", () => this.d.store.ns.put(`acks/${relay.from}/${relay.id}`).value(JSON.stringify({ node, ack: { ...ack, commandId: relay.id } })).exec());
    });
  }

  get replica(): string {
    return this.d.replica;
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** Which replica an agent's channel is open on (undefined: none). */
  replicaOf(node: string): string | undefined {
    return this.d.hub.connected(node) ? this.d.replica : this.remote.get(node);
  }

  private async call(what: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      if (!this.closed) this.d.logger.warn(`replicas: could not ${what} in etcd`, { error: (e as Error).message });
    }
  }

  async start(): Promise<void> {
    const ns = this.d.store.ns;
    this.lease = this.d.store.ns.lease(this.d.ttlSeconds);
    this.lease.on("lost", (e) => {
      if (this.closed) return;
      this.d.logger.warn("replicas: this replica's etcd lease was lost; re-registering", { error: e.message });
      void this.restartLease();
    });
    await this.lease.put(`replicas/${this.d.replica}`).value(JSON.stringify({ since: Date.now() })).exec();
    for (const node of this.d.hub.connectedNodes()) await this.putConn(node);
    const conns = await ns.getAll().prefix("conns/").exec();
    for (const kv of conns.kvs) this.sawConn(kv.key.toString().slice("conns/".length), JSON.parse(kv.value.toString()).replica);
    // Revisions after the read: nothing between the two is missed.
    const from = (BigInt(conns.header.revision) + 1n).toString();
    const connWatch = await ns.watch().prefix("conns/").startRevision(from).create();
    connWatch.on("put", (kv) => this.sawConn(kv.key.toString().slice("conns/".length), JSON.parse(kv.value.toString()).replica));
    connWatch.on("delete", (kv) => {
      const node = kv.key.toString().slice("conns/".length);
      if (this.remote.delete(node)) this.emit("disconnect", node);
    });
    const cmdWatch = await ns.watch().prefix(`cmds/${this.d.replica}/`).create();
    cmdWatch.on("put", (kv) => void this.deliver(kv.key.toString(), JSON.parse(kv.value.toString())));
    const ackWatch = await ns.watch().prefix(`acks/${this.d.replica}/`).create();
    ackWatch.on("put", (kv) => {
      const { node, ack } = JSON.parse(kv.value.toString()) as { node: string; ack: Ack };
      void this.call("clear an ack", () => ns.delete().key(kv.key.toString()).exec());
      this.emit("ack", node, ack);
    });
    for (const w of [connWatch, cmdWatch, ackWatch]) w.on("error", (e) => this.d.logger.warn("replicas: an etcd watch failed; it reconnects", { error: (e as Error).message }));
    this.watchers.push(connWatch, cmdWatch, ackWatch);
    this.campaignForLeader();
  }

  private async restartLease(): Promise<void> {
    for (let attempt = 0; !this.closed; attempt++) {
      try {
        this.lease = this.d.store.ns.lease(this.d.ttlSeconds);
        this.lease.on("lost", () => void (!this.closed && this.restartLease()));
        await this.lease.put(`replicas/${this.d.replica}`).value(JSON.stringify({ since: Date.now() })).exec();
        for (const node of this.d.hub.connectedNodes()) await this.putConn(node);
        return;
      } catch {
        await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** attempt)).unref());
      }
    }
  }

  private campaignForLeader(): void {
    if (this.closed) return;
    this.election = this.d.store.ns.election("leader", this.d.ttlSeconds);
    const c = this.election.campaign(this.d.replica);
    this.campaign = c;
    c.on("elected", () => {
      if (this.closed || this.campaign !== c) return;
      this.leading = true;
      this.d.logger.info("this replica leads fleet work (campaigns, CA rotation)", { replica: this.d.replica });
      this.onLeadership(true);
    });
    c.on("error", (e) => {
      if (this.closed || this.campaign !== c) return;
      const was = this.leading;
      this.leading = false;
      this.d.logger.warn("replicas: the leader election failed (etcd lost?); campaigning again", { error: e.message, wasLeader: was });
      if (was) this.onLeadership(false);
      void c.resign().catch(() => undefined);
      setTimeout(() => this.campaignForLeader(), 500).unref();
    });
  }

  private sawConn(node: string, replica: string): void {
    if (replica === this.d.replica) return;
    const known = this.remote.get(node);
    this.remote.set(node, replica);
    if (known !== replica) this.emit("connect", node);
  }

  private putConn(node: string): Promise<void> {
    return this.call("record a connection", async () => {
      if (!this.lease || !this.d.hub.connected(node)) return;
      await this.lease.put(`conns/${node}`).value(JSON.stringify({ replica: this.d.replica })).exec();
    });
  }

  private dropConn(node: string): Promise<void> {
    // Only if it still names this replica: the agent may be on another one already.
    return this.call("clear a connection", () =>
      this.d.store.ns.if(`conns/${node}`, "Value", "==", JSON.stringify({ replica: this.d.replica })).then(this.d.store.ns.delete().key(`conns/${node}`)).commit(),
    );
  }

  /** A command another replica sent for an agent connected here. */
  private async deliver(key: string, c: { node: string; msg: Outbound; from: string; id: string }): Promise<void> {
    await this.call("clear a delivered command", () => this.d.store.ns.delete().key(key).exec());
    const local = this.d.hub.send(c.node, c.msg);
    if (!local) {
      this.d.logger.warn("replicas: a command for an agent that is no longer connected here was dropped", { node: c.node, from: c.from, type: c.msg.type });
      return;
    }
    if (c.msg.type === "evict") setTimeout(() => this.d.hub.disconnect(c.node, CLOSE_EVICTED, "evicted"), 50).unref();
    this.relayed.set(local, { from: c.from, id: c.id });
  }

  connected(node: string): boolean {
    return this.d.hub.connected(node) || this.remote.has(node);
  }

  connectedNodes(): string[] {
    return [...new Set([...this.d.hub.connectedNodes(), ...this.remote.keys()])];
  }

  send(node: string, msg: Outbound): string | undefined {
    if (this.d.hub.connected(node)) return this.d.hub.send(node, msg);
    const replica = this.remote.get(node);
    if (!replica) return undefined;
    const id = randomUUID();
    void this.call("forward a command", () => this.d.store.ns.put(`cmds/${replica}/${id}`).value(JSON.stringify({ node, msg, from: this.d.replica, id })).exec());
    return id;
  }

  /** Evicts a node wherever its channel is open. */
  evict(node: string, reason: string): void {
    if (this.d.hub.connected(node)) this.d.hub.evict(node, reason);
    else this.send(node, { type: "evict", reason });
  }

  async close(): Promise<void> {
    this.closed = true;
    const was = this.leading;
    this.leading = false;
    if (was) this.onLeadership(false);
    for (const w of this.watchers) await w.cancel().catch(() => undefined);
    await this.campaign?.resign().catch(() => undefined);
    await this.lease?.revoke().catch(() => undefined);
  }
}
