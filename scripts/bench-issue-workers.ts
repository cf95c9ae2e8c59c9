// Benchmark: does a worker pool for the issuance crypto (CSR read + signature check, leaf build +
// signature: what pki/csr-der.ts and pki/leaf-der.ts do per certificate) pay on this machine?
// Runs the same work inline on the main thread and in node:worker_threads pools of 1 and 2 workers
// (KeyObject and results posted, as a server would), with 32 requests in flight, and prints
// certificates/s and main-thread time per certificate (event-loop utilisation × wall / n): the
// main thread is what the HTTP server, TLS and the store writer share.
// Usage: node --import tsx scripts/bench-issue-workers.ts [--n 4000]
import { isMainThread, parentPort, Worker } from "node:worker_threads";
import { performance } from "node:perf_hooks";
import os from "node:os";
import { randomBytes } from "node:crypto";
import { readCsrDer } from "../src/pki/csr-der.js";
import { issueLeafDer, signingContext, type SigningContext } from "../src/pki/leaf-der.js";
import { createSelfSignedCa } from "../src/pki/certificate.js";
import { createNodeCsr, nodeSubject } from "../src/pki/csr.js";
import { generateKeyPair } from "../src/pki/keys.js";
import { commandLine } from "./proc-stats.js";

interface Job {
  id: number;
  pem: string;
}

async function work(ctx: SigningContext, pem: string): Promise<string> {
  const csr = await readCsrDer(pem);
  if (!csr || !csr.signatureValid) throw new Error("CSR refused");
  const leaf = (await issueLeafDer({ ctx, subject: nodeSubject("n1"), spki: csr.spki, kind: "client", now: new Date(), lifetimeMs: 86_400_000, random: (n) => randomBytes(n), subjectKeyAlgorithm: csr.keyAlgorithm }))!;
  return leaf.serial;
}

if (!isMainThread) {
  let ctx: SigningContext | undefined;
  parentPort!.on("message", (m: { ctx?: SigningContext } | Job) => {
    if ("ctx" in m) ctx = m.ctx;
    else void work(ctx!, (m as Job).pem).then((serial) => parentPort!.postMessage({ id: (m as Job).id, serial }));
  });
} else {
  const N = Number(process.argv[process.argv.indexOf("--n") + 1] || 4000) || 4000;
  const keys = await generateKeyPair("ECDSA-P256");
  const now = new Date();
  const issuer = { certPem: await createSelfSignedCa({ commonName: "bench", keys, now, lifetimeMs: 86_400_000 * 365, random: (n) => randomBytes(n) }), privateKey: keys.privateKey, algorithm: "ECDSA-P256" as const };
  const ctx = signingContext(issuer);
  const csrs: string[] = [];
  for (let i = 0; i < 16; i++) csrs.push(await createNodeCsr({ kind: "client", nodeName: "n1", keys: await generateKeyPair("ECDSA-P256") }));

  const measure = async (what: string, run: (pem: string) => Promise<string>) => {
    for (let i = 0; i < 200; i++) await run(csrs[i % csrs.length]);
    let next = 0;
    const elu0 = performance.eventLoopUtilization();
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        for (let i = next++; i < N; i = next++) await run(csrs[i % csrs.length]);
      }),
    );
    const wall = performance.now() - t0;
    const elu = performance.eventLoopUtilization(elu0);
    console.log(`${what.padEnd(16)} ${((N / wall) * 1000).toFixed(0).padStart(6)} certs/s   main thread ${((elu.utilization * wall) / N).toFixed(3)} ms/cert`);
  };

  console.log(`bench-issue-workers ${new Date().toISOString()}  load average ${os.loadavg().map((x) => x.toFixed(2)).join(" ")}  ${os.cpus().length} × ${os.cpus()[0].model}  node ${process.version}`);
  console.log(`command: ${commandLine()}`);
  // Inline: the work runs on the main thread between awaits, as the Issuer does it.
  await measure("inline", async (pem) => work(ctx, pem));
  for (const size of [1, 2]) {
    const workers = Array.from({ length: size }, () => new Worker(`import("tsx/esm/api").then((t) => { t.register(); return import(${JSON.stringify(import.meta.url)}); })`, { eval: true }));
    const waiting = new Map<number, (s: string) => void>();
    for (const w of workers) {
      w.postMessage({ ctx });
      w.on("message", (m: { id: number; serial: string }) => {
        waiting.get(m.id)!(m.serial);
        waiting.delete(m.id);
      });
    }
    let seq = 0;
    await measure(`${size} worker${size > 1 ? "s" : ""}`, (pem) => {
      const id = seq++;
      return new Promise<string>((resolve) => {
        waiting.set(id, resolve);
        workers[id % size].postMessage({ id, pem });
      });
    });
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
