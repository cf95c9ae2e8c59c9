// Seeded generators of hostile input for the control plane and the agent, and the drivers that
// send it: mutated `POST /v1/join` bodies (JSON-level, string-level and byte-level mutations of a
// valid request), and channel frames in both directions. Used by test/e2e/fuzz.test.ts (a bounded
// run on every test) and scripts/fuzz.ts (the long run recorded in docs/BENCHMARKS.md).
//
// What must hold: every request gets an answer below 500 within its timeout, every 4xx carries a
// reason; on the channel every frame the protocol refuses closes the connection with 1008 (frames
// WebSocket itself refuses: invalid UTF-8 → 1007), every frame it accepts leaves it open, and no
// close reason breaks the 123-byte limit.
import https from "node:https";
import WebSocket, { WebSocketServer } from "ws";
import { AgentMessage, CLOSE_POLICY_VIOLATION, MAX_FRAME_BYTES, parseFrame, ServerMessage } from "../src/protocol/channel.js";

/** mulberry32: small, fast and seeded, so a failing case can be replayed from its seed. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rng = () => number;
const pick = <T>(r: Rng, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
const int = (r: Rng, n: number) => Math.floor(r() * n);

/** Strings that have broken parsers, validators, loggers and close frames before. */
const NASTY_STRINGS = [
  "",
  " ",
  "\u0000",
  "\u001b[2J\u001b[H",
  "\r\n",
  "é".repeat(70),
  "日本語のノード".repeat(12),
  "👩‍👩‍👧‍👦".repeat(20),
  "\u202eevil",
  "\ud800",
  "\udfff\ud800",
  "a".repeat(300),
  "x".repeat(70_000),
  "__proto__",
  "constructor",
  "toString",
  "../../etc/passwd",
  "%00",
  "%s%n%x",
  "${jndi:ldap://x}",
  "<script>",
  "' OR 1=1 --",
  "NaN",
  "-0",
  "1e309",
  "null",
  "system:node:other",
  "WORKER-1",
  "worker_1",
  "worker-1.",
  ".worker",
  "a".repeat(64) + ".b",
];

/** Address-shaped strings: zone ids, mapped, bracketed, out of range, not addresses at all. */
const NASTY_ADDRESSES = [
  "fe80::1%eth0",
  "::1%1",
  "fe80::1%25eth0",
  "127.0.0.1%lo",
  "::ffff:127.0.0.1",
  "::ffff:1.2.3.4%x",
  "[::1]",
  "1.2.3.256",
  "01.02.03.04",
  "1.2.3",
  "1.2.3.4.5",
  "::",
  "0.0.0.0",
  "255.255.255.255",
  "224.0.0.1",
  "2001:db8::1/64",
  "10.0.0.1:8080",
  "localhost",
  "fd00::7",
  "1::2::3",
  "ffff::ffff::",
  " 10.0.0.7",
  "10.0.0.7\n",
];

function randomValue(r: Rng, depth = 0): unknown {
  switch (int(r, depth > 3 ? 7 : 10)) {
    case 0:
      return null;
    case 1:
      return pick(r, [0, -1, 1, 2 ** 53, -(2 ** 63), 1.5, 1e308, Number.MAX_SAFE_INTEGER]);
    case 2:
      return r() < 0.5;
    case 3:
      return pick(r, NASTY_STRINGS);
    case 4:
      return pick(r, NASTY_ADDRESSES);
    case 5:
      return pick(r, ["hello", "status", "ack", "rotate", "evict", "trust-bundle", "client", "serving", "ok", "error"]);
    case 6:
      return String.fromCharCode(...Array.from({ length: int(r, 40) }, () => int(r, 0x3000)));
    case 7:
      return Array.from({ length: int(r, 5) }, () => randomValue(r, depth + 1));
    case 8:
      return Object.fromEntries(Array.from({ length: int(r, 4) }, () => [pick(r, ["v", "id", "type", "x", "__proto__", "nodeName", "facts", "csrs"]), randomValue(r, depth + 1)]));
    default:
      return Array.from({ length: 200 + int(r, 2000) }, () => 0);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === "object" && !Array.isArray(v);

/** Every path to a value in a JSON tree. */
function paths(v: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [prefix];
  // Bounded: earlier mutations may have planted deep or long structures.
  if (prefix.length >= 6) return out;
  if (Array.isArray(v)) v.slice(0, 8).forEach((x, i) => out.push(...paths(x, [...prefix, i])));
  else if (v && typeof v === "object") for (const [k, x] of Object.entries(v).slice(0, 16)) out.push(...paths(x, [...prefix, k]));
  return out;
}

function getAt(o: unknown, p: (string | number)[]): unknown {
  return p.reduce<unknown>((acc, k) => (acc as Record<string | number, unknown> | undefined)?.[k], o);
}

function setAt(o: unknown, p: (string | number)[], value: unknown, remove = false): unknown {
  if (!p.length) return value;
  const parent = getAt(o, p.slice(0, -1)) as Record<string | number, unknown> | unknown[] | undefined;
  if (!parent || typeof parent !== "object") return o;
  const k = p[p.length - 1];
  if (remove) {
    if (Array.isArray(parent)) parent.splice(Number(k), 1);
    else delete (parent as Record<string, unknown>)[k as string];
  } else (parent as Record<string | number, unknown>)[k] = value;
  return o;
}

/** A PEM block with one of the ways a CSR can be mangled without breaking the JSON. */
function manglePem(r: Rng, pem: string): string {
  const lines = pem.trimEnd().split("\n");
  const body = lines.slice(1, -1).join("");
  switch (int(r, 10)) {
    case 0: {
      const i = int(r, body.length);
      const c = pick(r, ["A", "/", "+", "=", "!", "é", "\u0000"]);
      return `${lines[0]}\n${body.slice(0, i)}${c}${body.slice(i + 1)}\n${lines[lines.length - 1]}\n`;
    }
    case 1:
      return `${lines[0]}\n${body.slice(0, int(r, body.length))}\n${lines[lines.length - 1]}\n`;
    case 2:
      return pem + pem;
    case 3:
      return pem.replace(/CERTIFICATE REQUEST/g, pick(r, ["CERTIFICATE", "PRIVATE KEY", "NEW CERTIFICATE REQUEST", "X"]));
    case 4:
      return pem.replace(/\n/g, "\r\n");
    case 5:
      return `junk before\n${pem}junk after`;
    case 6:
      return `-----BEGIN CERTIFICATE REQUEST-----\n${Buffer.from(String(randomValue(r))).toString("base64")}\n-----END CERTIFICATE REQUEST-----\n`;
    case 7: {
      // Flip one bit of the DER: a different subject, key, extension or signature.
      const der = Buffer.from(body, "base64");
      der[int(r, der.length)] ^= 1 << int(r, 8);
      return `${lines[0]}\n${der.toString("base64")}\n${lines[lines.length - 1]}\n`;
    }
    case 8:
      return `${lines[0]}\n${body}\n`;
    default:
      return pem.replace("-----BEGIN CERTIFICATE REQUEST-----", "-----BEGIN CERTIFICATE REQUEST-----\nProc-Type: 4,ENCRYPTED");
  }
}

export interface JoinCase {
  body: string | Buffer;
  headers: Record<string, string>;
  what: string;
}

/** One mutated join request: a valid one, changed at 1–3 places. */
export function joinCase(r: Rng, base: Record<string, unknown>, token: string): JoinCase {
  let doc = structuredClone(base) as unknown;
  const what: string[] = [];
  const headers: Record<string, string> = { "content-type": "application/json", authorization: `Bearer ${token}` };
  const n = 1 + int(r, 3);
  let raw: string | Buffer | undefined;
  for (let i = 0; i < n; i++) {
    const all = paths(doc);
    const p = pick(r, all);
    const kind = int(r, 100);
    if (kind < 25) {
      doc = setAt(doc, p, randomValue(r));
      what.push(`set ${p.join(".")}`);
    } else if (kind < 35) {
      doc = setAt(doc, p, undefined, true);
      what.push(`delete ${p.join(".")}`);
    } else if (kind < 50) {
      const facts = (doc as { facts?: { addresses?: unknown[] } })?.facts;
      if (facts && Array.isArray(facts.addresses)) {
        facts.addresses.push(pick(r, NASTY_ADDRESSES));
        what.push("address");
      }
    } else if (kind < 60) {
      const csrs = (doc as { csrs?: Record<string, unknown> })?.csrs;
      const k = pick(r, ["client", "serving"]);
      if (csrs && typeof csrs[k] === "string") {
        csrs[k] = manglePem(r, csrs[k] as string);
        what.push(`pem ${k}`);
      }
    } else if (kind < 68) {
      const facts = (doc as { facts?: Record<string, unknown> })?.facts;
      const k = pick(r, ["hostname", "fqdn", "machineId", "agentVersion", "names"]);
      if (facts && typeof facts === "object") {
        facts[k] = k === "names" ? [pick(r, NASTY_STRINGS), pick(r, NASTY_STRINGS)] : pick(r, NASTY_STRINGS);
        what.push(`facts.${k}`);
      }
    } else if (kind < 74) {
      if (isObject(doc)) doc[pick(r, ["extra", "__proto__", "constructor", "v2"])] = randomValue(r);
      what.push("extra key");
    } else if (kind < 78) {
      if (isObject(doc)) doc.nodeName = pick(r, NASTY_STRINGS);
      what.push("nodeName");
    } else if (kind < 84) {
      const text = JSON.stringify(doc) ?? "null";
      const buf = Buffer.from(text);
      const op = int(r, 4);
      if (op === 0) buf[int(r, buf.length)] = int(r, 256);
      raw = op === 0 ? buf : op === 1 ? text.slice(0, int(r, text.length)) : op === 2 ? `\ufeff${text}` : `[${text}]`;
      what.push(`raw ${op}`);
    } else if (kind < 88) {
      raw = pick(r, ["", "null", "[]", "{}", "true", "1", '"x"', "a=b&c=d", "<xml/>", "{".repeat(5000), '{"v":1,"v":2}']);
      what.push("raw literal");
    } else if (kind < 93) {
      const h = int(r, 6);
      if (h === 0) delete headers.authorization;
      else if (h === 1) headers.authorization = `bearer   ${token}`;
      else if (h === 2) headers.authorization = `Bearer ${token}x`;
      else if (h === 3) headers.authorization = `Basic ${Buffer.from("a:b").toString("base64")}`;
      else if (h === 4) headers["content-type"] = pick(r, ["text/plain", "application/json; charset=utf-16", "application/x-www-form-urlencoded", "application/jsonx"]);
      else delete headers["content-type"];
      what.push(`header ${h}`);
    } else {
      // Deep nesting where an object is expected.
      let deep: unknown = 1;
      for (let d = 0; d < 2000; d++) deep = [deep];
      doc = setAt(doc, p, deep);
      what.push(`deep ${p.join(".")}`);
    }
  }
  return { body: raw ?? JSON.stringify(doc) ?? "", headers, what: what.join(", ") };
}

export interface JoinFuzzResult {
  cases: number;
  byStatus: Record<string, number>;
  /** Answers at or above 500, or 4xx without a reason, with the case that caused them. */
  failures: { status: number; what: string; answer: string }[];
  /** Requests with no answer within the timeout. */
  hangs: number;
  ms: number;
}

function post(url: URL, c: JoinCase, ca: string, agent: https.Agent, timeoutMs: number): Promise<{ status: number; text: string } | "hang" | { error: string }> {
  return new Promise((resolve) => {
    const req = https.request({ method: "POST", hostname: url.hostname, port: url.port, path: "/v1/join", headers: { ...c.headers, "content-length": String(Buffer.byteLength(c.body)) }, ca, agent, minVersion: "TLSv1.3", timeout: timeoutMs }, (res) => {
      let text = "";
      res.on("data", (d) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
      res.on("error", (e) => resolve({ error: e.message }));
    });
    req.on("timeout", () => (req.destroy(), resolve("hang")));
    req.on("error", (e) => resolve({ error: e.message }));
    req.end(c.body);
  });
}

/** Sends `cases` mutated join requests (a few at a time over keep-alive connections). */
export async function fuzzJoin(o: { url: string; ca: string; token: string; base: Record<string, unknown>; cases: number; seed: number; concurrency?: number; timeoutMs?: number }): Promise<JoinFuzzResult> {
  const r = seeded(o.seed);
  const url = new URL(o.url);
  const agent = new https.Agent({ keepAlive: true, maxSockets: o.concurrency ?? 4 });
  const result: JoinFuzzResult = { cases: 0, byStatus: {}, failures: [], hangs: 0, ms: 0 };
  const t0 = Date.now();
  const queue = Array.from({ length: o.cases }, () => joinCase(r, o.base, o.token));
  const worker = async () => {
    for (let c = queue.shift(); c; c = queue.shift()) {
      const a = await post(url, c, o.ca, agent, o.timeoutMs ?? 15_000);
      result.cases++;
      if (a === "hang") {
        result.hangs++;
        result.failures.push({ status: 0, what: c.what, answer: "no answer within the timeout" });
        continue;
      }
      if ("error" in a) {
        // The server may close a connection it refused early (connection: close); that is an answer
        // only if it came with a status, so retry once on a fresh socket.
        const again = await post(url, c, o.ca, new https.Agent({ keepAlive: false }), o.timeoutMs ?? 15_000);
        if (again === "hang" || "error" in again) {
          result.failures.push({ status: 0, what: c.what, answer: again === "hang" ? "no answer" : again.error });
          continue;
        }
        Object.assign(a, again);
      }
      const { status, text } = a as { status: number; text: string };
      result.byStatus[status] = (result.byStatus[status] ?? 0) + 1;
      let reason: unknown;
      try {
        reason = (JSON.parse(text) as { reason?: unknown }).reason;
      } catch {
        reason = undefined;
      }
      if (status >= 500 || status < 200 || (status >= 400 && (typeof reason !== "string" || !reason))) result.failures.push({ status, what: c.what, answer: text.slice(0, 300) });
    }
  };
  await Promise.all(Array.from({ length: o.concurrency ?? 4 }, worker));
  agent.destroy();
  result.ms = Date.now() - t0;
  return result;
}

// --- the channel ------------------------------------------------------------------------------

export interface Frame {
  data: string | Buffer;
  binary: boolean;
  what: string;
}

const validHello = (nodeName: string) => ({ v: 1, id: "h", type: "hello", nodeName, agentVersion: "0.1.0", certificates: [{ kind: "client", serial: "0a", notAfter: "2027-01-01T00:00:00.000Z", keyAlgorithm: "ECDSA-P256" }], crypto: { provider: "OpenSSL", fips: false }, addresses: ["127.0.0.1"], trustBundleSha256: "0".repeat(64) });
const validStatus = () => ({ v: 1, id: "s", type: "status", certificates: [], trustBundleSha256: "f".repeat(64) });
const validAck = () => ({ v: 1, id: "a", type: "ack", commandId: "never-sent", result: "error", error: "x" });
const validBundle = () => ({ v: 1, id: "b", type: "trust-bundle", bundle: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" });

/** One frame: a valid message mutated at 0–3 places, raw bytes, or a transport-level oddity. */
export function frameCase(r: Rng, bases: (() => Record<string, unknown>)[]): Frame {
  const kind = int(r, 100);
  if (kind < 4) return { data: Buffer.from(String(randomValue(r))), binary: true, what: "binary" };
  if (kind < 7) return { data: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), binary: false, what: "invalid utf-8" };
  if (kind < 10) return { data: JSON.stringify({ ...bases[0](), pad: "x".repeat(MAX_FRAME_BYTES + int(r, 100_000)) }), binary: false, what: "oversized" };
  if (kind < 16) return { data: pick(r, ["", "{", "nope", "null", "[]", "1", '"hello"', "{}", "\u0000", "é".repeat(200)]), binary: false, what: "not a message" };
  let doc = bases[int(r, bases.length)]() as unknown;
  const what: string[] = [];
  const n = kind < 30 ? 0 : 1 + int(r, 3);
  for (let i = 0; i < n; i++) {
    const p = pick(r, paths(doc).filter((x) => x.length > 0));
    const m = int(r, 10);
    if (m < 5) doc = setAt(doc, p, randomValue(r));
    else if (m < 7) doc = setAt(doc, p, undefined, true);
    else if (m < 8) isObject(doc) && (doc.type = pick(r, NASTY_STRINGS));
    else if (m < 9) isObject(doc) && (doc.extra = randomValue(r));
    else {
      const list = (doc as { addresses?: unknown[] } | null)?.addresses;
      if (Array.isArray(list)) list.push(pick(r, NASTY_ADDRESSES));
    }
    what.push(p.join("."));
  }
  return { data: JSON.stringify(doc) ?? "null", binary: false, what: what.length ? `mutated ${what.join(", ")}` : "valid" };
}

/** What the receiving side must do with a frame: stay open, or close with this code. */
export function expectedClose(f: Frame, side: "server" | "agent", nodeName: string): number | undefined {
  if (f.binary) return CLOSE_POLICY_VIOLATION;
  const buf = typeof f.data === "string" ? Buffer.from(f.data) : f.data;
  // WebSocket itself refuses text frames that are not UTF-8 (RFC 6455 §8.1).
  if (!isUtf8(buf)) return 1007;
  const parsed = side === "server" ? parseFrame(AgentMessage, buf) : parseFrame(ServerMessage, buf);
  if (!parsed.ok) return CLOSE_POLICY_VIOLATION;
  const m = parsed.message as { type: string; nodeName?: string };
  if (side === "server" && m.type === "hello" && m.nodeName !== undefined && m.nodeName !== nodeName) return CLOSE_POLICY_VIOLATION;
  return undefined;
}

function isUtf8(b: Buffer): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(b);
    return true;
  } catch {
    return false;
  }
}

export interface ChannelFuzzResult {
  frames: number;
  accepted: number;
  closed: Record<string, number>;
  connections: number;
  /** Frames whose outcome differed from what the protocol says (with the frame). */
  mismatches: string[];
  ms: number;
}

/**
 * Sends frames to the server as the node `cred` belongs to, one at a time: after each, a ping;
 * a pong means the frame was handled and the connection stays, a close must carry the expected code.
 */
export async function fuzzServerChannel(o: { url: string; ca: string; pem: string; nodeName: string; frames: number; seed: number }): Promise<ChannelFuzzResult> {
  const r = seeded(o.seed);
  const wsUrl = `${o.url.replace(/^https/, "wss")}/v1/agents/ws`;
  const result: ChannelFuzzResult = { frames: 0, accepted: 0, closed: {}, connections: 0, mismatches: [], ms: 0 };
  const t0 = Date.now();
  let ws: WebSocket | undefined;
  const bases = [() => validHello(o.nodeName), validStatus, validAck];
  for (let i = 0; i < o.frames; i++) {
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      ws = new WebSocket(wsUrl, { ca: o.ca, cert: o.pem, key: o.pem, minVersion: "TLSv1.3", perMessageDeflate: false, maxPayload: 1024 * 1024 });
      ws.on("message", () => undefined);
      ws.on("error", () => undefined);
      await new Promise<void>((resolve, reject) => {
        ws!.once("open", () => resolve());
        ws!.once("unexpected-response", (_q, res) => reject(new Error(`channel refused: HTTP ${res.statusCode}`)));
        ws!.once("error", reject);
      });
      result.connections++;
    }
    const f = frameCase(r, bases);
    const want = expectedClose(f, "server", o.nodeName);
    const got = await new Promise<{ close?: number; reason?: string }>((resolve) => {
      const socket = ws!;
      const onClose = (code: number, reason: Buffer) => (socket.off("pong", onPong), resolve({ close: code, reason: reason.toString() }));
      const onPong = () => (socket.off("close", onClose), resolve({}));
      socket.once("close", onClose);
      socket.once("pong", onPong);
      socket.send(f.data, { binary: f.binary });
      socket.ping();
    });
    result.frames++;
    if (got.close === undefined) result.accepted++;
    else result.closed[got.close] = (result.closed[got.close] ?? 0) + 1;
    if (got.close !== want) result.mismatches.push(`frame ${i} (${f.what}): expected ${want ?? "open"}, got ${got.close ?? "open"} ${got.reason ?? ""}: ${String(f.data).slice(0, 200)}`);
    if (got.reason !== undefined && Buffer.byteLength(got.reason) > 123) result.mismatches.push(`frame ${i}: close reason of ${Buffer.byteLength(got.reason)} bytes`);
  }
  ws?.close();
  result.ms = Date.now() - t0;
  return result;
}

/**
 * Plays a control plane that sends fuzzed frames to a real agent: a TLS server with the real
 * server's certificate (so the agent's channel trusts it) that, per connection, sends one frame and
 * watches what the agent does with it (an ack, silence, or a close with a code).
 */
export async function fuzzAgentChannel(o: { tls: { cert: string; key: string }; frames: number; seed: number; startAgent: (url: string) => Promise<{ close(): Promise<void> }>; settleMs?: number }): Promise<ChannelFuzzResult> {
  const r = seeded(o.seed);
  const result: ChannelFuzzResult = { frames: 0, accepted: 0, closed: {}, connections: 0, mismatches: [], ms: 0 };
  const t0 = Date.now();
  // Renewals a fuzzed rotation starts are refused at once (the impostor signs nothing).
  const server = https.createServer({ cert: o.tls.cert, key: o.tls.key, minVersion: "TLSv1.3", requestCert: true, rejectUnauthorized: false }, (_req, res) => {
    res.statusCode = 503;
    res.setHeader("content-type", "application/json");
    res.end('{"error":"unavailable","reason":"fuzzing"}');
  });
  const wss = new WebSocketServer({ server, path: "/v1/agents/ws", perMessageDeflate: false });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
  let remaining = o.frames;
  let done!: () => void;
  const finished = new Promise<void>((r2) => (done = r2));
  wss.on("connection", (ws) => {
    result.connections++;
    if (remaining <= 0) return;
    ws.once("message", () => {
      // The agent's hello arrived: send it one fuzzed frame.
      if (remaining-- <= 0) return;
      // Only commands an agent may meet from a genuine control plane without leaving: no evict,
      // and rotations are mutated (a valid one would renew against this impostor).
      const f = frameCase(r, [validBundle, () => ({ v: 1, id: "r", type: "rotate", which: ["client"], reason: "x".repeat(600) })]);
      const want = expectedClose(f, "agent", "");
      const settle = setTimeout(() => finish(undefined, ""), o.settleMs ?? 2000);
      const finish = (code: number | undefined, reason: string) => {
        clearTimeout(settle);
        result.frames++;
        if (code === undefined) result.accepted++;
        else result.closed[code] = (result.closed[code] ?? 0) + 1;
        if (code !== want) result.mismatches.push(`frame (${f.what}): expected ${want ?? "open"}, got ${code ?? "open"} ${reason}: ${String(f.data).slice(0, 200)}`);
        if (Buffer.byteLength(reason) > 123) result.mismatches.push(`close reason of ${Buffer.byteLength(reason)} bytes`);
        ws.removeAllListeners("message");
        ws.terminate();
        if (remaining <= 0) done();
      };
      ws.once("close", (code, reason) => finish(code, reason.toString()));
      // An answer (an ack) settles a frame the agent accepted.
      ws.on("message", (d) => {
        if (want === undefined && /"type":"ack"/.test(d.toString())) {
          ws.removeAllListeners("close");
          finish(undefined, "");
        }
      });
      ws.send(f.data, { binary: f.binary });
    });
  });
  const agent = await o.startAgent(url);
  // A watchdog: an agent that stops reconnecting (it should never) ends the run with a mismatch.
  let lastConnections = -1;
  const watchdog = setInterval(() => {
    if (result.connections === lastConnections) {
      result.mismatches.push(`the agent stopped reconnecting after ${result.frames} frames`);
      done();
    }
    lastConnections = result.connections;
  }, 15_000);
  await finished;
  clearInterval(watchdog);
  await agent.close();
  wss.close();
  server.close();
  result.ms = Date.now() - t0;
  return result;
}
