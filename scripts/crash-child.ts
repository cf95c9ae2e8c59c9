// The victim process of scripts/crash-safety.ts: runs the agent's startup recovery, then renews
// both certificates (forced) in a loop until it is killed. Protocol on stdout, one line each:
//   RECOVERING                         startup recovery begins
//   READY <recovery actions as JSON>   recovery finished; waits for "GO" on stdin
//   RENEWED <clientSerial> <servingSerial>
//   ERROR <message>
// The GO handshake lets the harness check the node's files after recovery while nothing writes.
// The child exits by itself when its stdin closes (the harness went away), so it never outlives it.
// Usage: node --import <repo>/node_modules/tsx/dist/esm/index.mjs scripts/crash-child.ts \
//          --root DIR --server URL --pin sha256:HEX --node NAME
import { createInterface } from "node:readline";
import { AgentConfig } from "../src/config/agent.js";
import { nodeLayout } from "../src/agent/layout.js";
import { nodeIdentity } from "../src/agent/identity.js";
import { NodeStore } from "../src/agent/node-store.js";
import { Renewer } from "../src/agent/renewer.js";
import { AgentMetrics } from "../src/agent/metrics.js";
import { silentLogger } from "../src/platform/log.js";
import { uniform } from "../src/platform/random.js";

function arg(name: string): string {
  const i = process.argv.indexOf(name);
  const v = i > 0 ? process.argv[i + 1] : undefined;
  if (!v) {
    process.stderr.write(`crash-child: missing ${name}\n`);
    process.exit(2);
  }
  return v;
}

const say = (line: string) => process.stdout.write(line.replace(/\n/g, " ") + "\n");

const config = AgentConfig.parse({
  root: arg("--root"),
  server: arg("--server"),
  caCertHash: arg("--pin"),
  nodeName: arg("--node"),
  addresses: { only: ["127.0.0.1"] },
  hooks: [],
  healthListen: "127.0.0.1:0",
});
const layout = nodeLayout(config.root);

const lines = createInterface({ input: process.stdin });
let go!: () => void;
const started = new Promise<void>((resolve) => (go = resolve));
lines.on("line", (l) => {
  if (l.trim() === "GO") go();
});
lines.on("close", () => process.exit(3));

say("RECOVERING");
// Under the node store's lock, as the agent does: a one-shot renew may be installing meanwhile.
const store = new NodeStore(layout, { what: "agent (crash-child)" });
const actions = await store.recover(new Date());
say(`READY ${JSON.stringify(actions)}`);
await started;

const clock = () => new Date();
const renewer = new Renewer({
  config,
  layout,
  store,
  logger: silentLogger(),
  clock,
  random: uniform,
  // Host facts are not needed (and systeminformation spawns commands): keep the loop tight.
  identity: () => nodeIdentity({ nodeName: config.nodeName, addresses: config.addresses, facts: async () => ({}) }),
  setTimer: () => ({ cancel() {} }), // the loop below is the retry
  metrics: new AgentMetrics(clock),
});

for (;;) {
  try {
    const out = await renewer.renew(["client", "serving"], { force: true });
    if (out.error) {
      say(`ERROR ${out.error}`);
      await new Promise((r) => setTimeout(r, 50)); // do not spin on a persistent failure
      continue;
    }
    const serial = (k: string) => out.renewed.find((r) => r.kind === k)?.serial ?? "-";
    say(`RENEWED ${serial("client")} ${serial("serving")}`);
  } catch (e) {
    // renew() is meant to report failures in its outcome; a rejection is reported the same way.
    say(`ERROR (thrown) ${(e as Error).message}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
