// The control plane for scripts/bench-fleet.ts, in its own process so that its RSS, CPU and file
// descriptors can be read from /proc without the agents or the harness in the figures. It is what
// `nodecert server run` runs (runServer, JSON log on stdout, default campaign options, 30 s
// heartbeat), without the FIPS re-exec and the systemd readiness report, plus an IPC handle on the
// hub for what the admin API does not offer:
//   stats        → connected nodes, nodes whose hello of the current connection was processed
//   gc           → a full collection (the parent starts this process with --expose-gc)
//   push-bundle  → sends the current trust bundle to every connected node, the same loop
//                  CaRotation uses in its prepare phase, and reports when each node acked
// Not a product entry point: run it through bench-fleet.ts.
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { createLogger } from "../src/platform/log.js";
import { runServer } from "../src/server/run.js";

export type ServerRequest = { seq: number } & ({ type: "stats" } | { type: "gc" } | { type: "push-bundle"; timeoutMs: number } | { type: "close" });

export interface PushResult {
  sent: number;
  /** Per node: ms from the start of the broadcast, and from that node's own send, to its ack. */
  acks: { node: string; sinceStartMs: number; sinceSendMs: number }[];
  errors: { node: string; error: string }[];
  /** Nodes that had not acked when the timeout ran out. */
  missing: string[];
  sendLoopMs: number;
}

export type ServerReply =
  | { type: "ready"; url: string; port: number }
  | { type: "stats"; seq: number; connected: number; helloed: number }
  | { type: "gc"; seq: number; available: boolean }
  | { type: "push-bundle"; seq: number; result: PushResult }
  | { type: "closed"; seq: number }
  | { type: "error"; seq?: number; error: string };

const send = (m: ServerReply) => process.send?.(m);
if (!process.send) {
  console.error("bench-fleet-server runs as a child of scripts/bench-fleet.ts (it talks over IPC)");
  process.exit(2);
}

const { values } = parseArgs({ options: { dir: { type: "string" }, listen: { type: "string" } } });
if (!values.dir) {
  console.error("--dir is required (a directory made by `nodecert server init`)");
  process.exit(2);
}

const logger = createLogger({ component: "server" });
const server = await runServer({ dir: values.dir, listen: values.listen, logger }).catch((e: Error) => {
  send({ type: "error", error: `the server did not start: ${e.message}` });
  process.exit(1);
});
const hub = server.hub;

// A node counts as settled when the hello of its current connection has been recorded.
const helloed = new Set<string>();
hub.on("hello", (node) => helloed.add(node));
hub.on("disconnect", (node) => helloed.delete(node));

async function pushBundle(timeoutMs: number): Promise<PushResult> {
  const nodes = hub.connectedNodes();
  const sentAt = new Map<string, { node: string; t: number }>();
  const acks: PushResult["acks"] = [];
  const errors: PushResult["errors"] = [];
  let resolveAll!: () => void;
  const all = new Promise<void>((r) => (resolveAll = r));
  const onAck = (node: string, ack: { commandId: string; result: string; error?: string }) => {
    const s = sentAt.get(ack.commandId);
    if (!s) return;
    sentAt.delete(ack.commandId);
    const now = performance.now();
    if (ack.result === "ok") acks.push({ node, sinceStartMs: now - t0, sinceSendMs: now - s.t });
    else errors.push({ node, error: ack.error ?? "error" });
    if (!sentAt.size) resolveAll();
  };
  hub.on("ack", onAck);
  const t0 = performance.now();
  for (const node of nodes) {
    const t = performance.now();
    const id = hub.send(node, { type: "trust-bundle", bundle: server.authority.trustBundle });
    if (id) sentAt.set(id, { node, t });
  }
  const sendLoopMs = performance.now() - t0;
  const sent = sentAt.size;
  if (!sent) resolveAll();
  const timer = setTimeout(resolveAll, timeoutMs);
  await all;
  clearTimeout(timer);
  hub.off("ack", onAck);
  return { sent, acks, errors, missing: [...sentAt.values()].map((s) => s.node), sendLoopMs };
}

let closing = false;
async function close(code: number): Promise<never> {
  if (!closing) {
    closing = true;
    await server.close().catch(() => undefined);
  }
  process.exit(code);
}
// The parent going away (crash, kill) must not leave a server behind.
process.on("disconnect", () => void close(0));
process.on("SIGTERM", () => void close(0));
process.on("SIGINT", () => void close(0));

process.on("message", (m: ServerRequest) => {
  void (async () => {
    try {
      if (m.type === "stats") send({ type: "stats", seq: m.seq, connected: hub.connectedNodes().length, helloed: helloed.size });
      else if (m.type === "gc") {
        const gc = (globalThis as { gc?: () => void }).gc;
        gc?.();
        send({ type: "gc", seq: m.seq, available: !!gc });
      } else if (m.type === "push-bundle") send({ type: "push-bundle", seq: m.seq, result: await pushBundle(m.timeoutMs) });
      else if (m.type === "close") {
        closing = true;
        await server.close();
        send({ type: "closed", seq: m.seq });
        process.disconnect?.();
        process.exit(0);
      }
    } catch (e) {
      send({ type: "error", seq: m.seq, error: (e as Error).message });
    }
  })();
});

send({ type: "ready", url: server.url, port: server.port });
