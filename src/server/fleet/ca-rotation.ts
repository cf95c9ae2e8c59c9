// CA rotation with overlapping trust, in phases that survive restarts:
//   prepare  new CA created; nodes get the bundle old+new and ack it
//   switch   the signer issues from the new CA only; a campaign re-issues every node
//   finish   no node holds an old-CA certificate: the old CA leaves the bundle
// Each phase advances by itself once nothing blocks it, or when the operator forces it.
import { promises as fs, existsSync } from "node:fs";
import path from "node:path";
import type { Logger } from "../../platform/log.js";
import { crossSignCa, type RandomBytes } from "../../pki/certificate.js";
import { certificateInfo } from "../../pki/certificate-info.js";
import { splitCertificates } from "../../pki/pem.js";
import { certificatePin } from "../../pki/pin.js";
import { chainProblems } from "../../pki/verify.js";
import { ensureCa, loadCa, type LoadedCa } from "../ca/ca.js";
import type { ServerPaths } from "../paths.js";
import { Authority, bundleSha256 } from "../ca/authority.js";
import type { Store } from "../store/store.js";
import type { Hub } from "./hub.js";
import type { Campaigns } from "./campaigns.js";
import { writeFileAtomic } from "../../platform/files.js";
import type { ClockLike } from "../../platform/clock.js";
import { SerialQueue } from "../../platform/serial-queue.js";

export type CaPhase = "prepare" | "switch" | "finishing" | "done";

export interface CaRotationState {
  id: string;
  phase: CaPhase;
  startedAt: string;
  oldFingerprint: string;
  newFingerprint: string;
  campaignId?: string;
  finishedAt?: string;
  forced: string[];
}

/** A CA of the trust bundle, and whether `nodecert join --ca-cert-hash <pin>` works now. */
export interface JoinPin {
  pin: string;
  subject: string;
  /** The server's current TLS chain verifies against this CA alone (what a join anchors in). */
  valid: boolean;
  /** Why not, when not. */
  problem?: string;
}

export interface CaRotationStatus {
  rotation?: CaRotationState;
  /** Nodes that keep the current phase from advancing, with why. */
  blockers: string[];
  bundleCertificates: number;
  /** Every CA of the bundle, checked against the chain the server serves right now. */
  joinPins: JoinPin[];
}

const KEY = "ca-rotation";

export function nextCaPaths(p: ServerPaths): ServerPaths {
  const caDir = path.join(p.dir, "ca-next");
  return { ...p, caDir, caCert: path.join(caDir, "ca.crt"), caKeyEnc: path.join(caDir, "ca.key.enc"), caBundle: path.join(caDir, "bundle.crt") };
}

/** The new CA cross-signed by the old one, kept next to the new CA while the rotation runs. */
export function crossCertPath(p: ServerPaths): string {
  return path.join(nextCaPaths(p).caDir, "cross.crt");
}

export interface CaRotationDeps {
  store: Store;
  authority: Authority;
  hub: Hub;
  campaigns: Campaigns;
  paths: ServerPaths;
  logger: Logger;
  clock: ClockLike;
  random: RandomBytes;
  /** Re-applies the server's TLS identity and client-CA list (hot, no restart). */
  reloadTls: () => Promise<void>;
  /**
   * Re-issues the server's TLS and admin certificates that the current signer did not sign, and
   * hot-reloads the TLS one (ServiceCertRenewal.check, which also runs hourly: one code path).
   */
  ensureServiceCertificates: (trigger: string) => Promise<unknown>;
  /** The certificate chain the server's TLS presents right now (leaf first). */
  servedChain: () => Promise<string>;
  maxInFlight: number;
  autoAdvance: boolean;
  /** Replicas: only the leader advances phases by itself (default: this server always may). */
  isLeader?: () => boolean;
  /** Replicas: shares the CA files and this state with the other replicas (after each change). */
  publish?: (s: CaRotationState) => Promise<void>;
}

export class CaRotation {
  private readonly queue = new SerialQueue();

  constructor(private readonly d: CaRotationDeps) {
    const nudge = () => {
      if (d.autoAdvance && (d.isLeader?.() ?? true)) void this.advance(false).catch((e) => d.logger.error("CA rotation step failed", { error: (e as Error).message }));
    };
    d.hub.on("hello", nudge);
    d.hub.on("status", nudge);
    d.hub.on("ack", nudge);
    const prev = d.campaigns.onFinished;
    d.campaigns.onFinished = (c) => {
      prev(c);
      nudge();
    };
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    return this.queue.run(fn);
  }

  async state(): Promise<CaRotationState | undefined> {
    return this.d.store.getKv<CaRotationState>(KEY);
  }

  /** At server start: restore signer and trust for the phase a rotation is in. */
  async resume(current: LoadedCa): Promise<void> {
    const s = await this.state();
    if (s && s.phase === "finishing") {
      await this.finishFiles(s);
      this.d.authority.set(await loadCa(this.d.paths));
      await this.saveState({ ...s, phase: "done", finishedAt: this.d.clock().toISOString() });
      this.d.logger.info("CA rotation: finished after a restart; the old CA left the trust bundle", { rotation: s.id });
    } else if (s && s.phase !== "done") {
      const next = await loadCa(nextCaPaths(this.d.paths));
      const cross = await this.ensureCross(current, next);
      if (s.phase === "prepare") this.d.authority.set(current, next, cross);
      else this.d.authority.set(next, current, cross);
      this.d.logger.info("resuming CA rotation", { phase: s.phase, rotation: s.id });
    }
    // A process killed between a phase change and writing the admin's ca.crt left it behind the
    // phase (found by killing the server during finish): write what this phase trusts. Nodes get
    // the bundle when they reconnect (their hello carries its hash).
    const admin = await fs.readFile(this.d.paths.adminCa, "utf8").catch(() => undefined);
    if (admin !== this.d.authority.trustBundle) await writeFileAtomic(this.d.paths.adminCa, this.d.authority.trustBundle, 0o600);
  }

  start(o: { caCertPem?: string; caKeyPem?: string }): Promise<CaRotationState> {
    return this.serial(async () => {
      const s = await this.state();
      if (s && s.phase !== "done") throw new Error(`a CA rotation (${s.id}) is already in phase ${s.phase}; wait for it or force it forward`);
      const np = nextCaPaths(this.d.paths);
      await fs.rm(np.caDir, { recursive: true, force: true });
      const kek = await fs.readFile(this.d.paths.kek);
      await ensureCa(np, kek, { providedCertPem: o.caCertPem, providedKeyPem: o.caKeyPem, commonName: `nodecert-ca-${this.d.clock().toISOString().slice(0, 10)}`, now: this.d.clock(), random: this.d.random });
      const next = await loadCa(np, kek);
      const old = this.d.authority.signer;
      this.d.authority.set(old, next, await this.ensureCross(old, next));
      const state: CaRotationState = {
        id: `ca-${this.d.clock().getTime().toString(36)}`,
        phase: "prepare",
        startedAt: this.d.clock().toISOString(),
        oldFingerprint: certificateInfo(old.issuer.certPem).fingerprint256,
        newFingerprint: certificateInfo(next.issuer.certPem).fingerprint256,
        forced: [],
      };
      await this.saveState(state);
      await this.afterTrustChange();
      this.d.logger.info("CA rotation: prepare", { rotation: state.id, newCaPin: next.pin });
      return state;
    });
  }

  /** Moves to the next phase when nothing blocks it (or `force`). Returns the state after. */
  advance(force: boolean, o: { oneStep?: boolean } = {}): Promise<CaRotationState | undefined> {
    return this.serial(async () => {
      let s = await this.state();
      // Keep going while phases complete (unless asked for one step): with no nodes, all at once.
      const steps = o.oneStep ? 1 : 3;
      for (let i = 0; i < steps && s && s.phase !== "done"; i++) {
        const blockers = await this.blockers(s);
        if (blockers.length && !force) return s;
        if (blockers.length) {
          this.d.logger.warn("CA rotation forced past blockers", { phase: s.phase, blockers });
          s = { ...s, forced: [...s.forced, `${s.phase}: ${blockers.join("; ")}`] };
        }
        force = false;
        s = s.phase === "prepare" ? await this.toSwitch(s) : await this.toFinish(s);
      }
      return s;
    });
  }

  async status(): Promise<CaRotationStatus> {
    const rotation = await this.state();
    const blockers = rotation && rotation.phase !== "done" ? await this.blockers(rotation) : [];
    const bundle = splitCertificates(this.d.authority.trustBundle);
    return { rotation, blockers, bundleCertificates: bundle.length, joinPins: await this.joinPins(bundle) };
  }

  /**
   * A join fetches the bundle, keeps only the CA its pin names and anchors TLS in it: so a pin is
   * valid exactly when the chain the server serves verifies against that one CA.
   */
  private async joinPins(bundle: string[]): Promise<JoinPin[]> {
    const chain = await this.d.servedChain();
    const now = this.d.clock();
    return bundle.map((ca) => {
      const problems = chainProblems(chain, ca, now);
      return { pin: certificatePin(ca), subject: certificateInfo(ca).subject.replace(/\n/g, ", "), valid: problems.length === 0, ...(problems.length ? { problem: problems.join("; ") } : {}) };
    });
  }

  /**
   * The new CA cross-signed by the old one (made once per rotation, kept with the new CA): the
   * voucher agents check before trusting the new CA, and the link that keeps the old pin valid.
   */
  private async ensureCross(old: LoadedCa, next: LoadedCa): Promise<string> {
    const file = crossCertPath(this.d.paths);
    const existing = await fs.readFile(file, "utf8").catch(() => undefined);
    if (existing && certificatePin(existing) === certificatePin(next.issuer.certPem)) return existing;
    const cross = await crossSignCa({ subjectCertPem: next.issuer.certPem, issuer: old.issuer, now: this.d.clock(), random: this.d.random });
    await writeFileAtomic(file, cross, 0o644);
    this.d.logger.info("cross-signed the new CA with the old one", { newCaPin: next.pin, oldCaPin: old.pin, file });
    return cross;
  }

  private async liveNodes() {
    return (await this.d.store.listNodes()).filter((n) => !n.evictedAt);
  }

  private async blockers(s: CaRotationState): Promise<string[]> {
    const out: string[] = [];
    if (s.phase === "prepare") {
      const want = bundleSha256(this.d.authority.trustBundle);
      for (const n of await this.liveNodes()) {
        if (n.reported?.trustBundleSha256 !== want) out.push(`${n.name}: has not installed the old+new trust bundle${this.d.hub.connected(n.name) ? "" : " (offline)"}`);
      }
    } else if (s.phase === "switch") {
      if (s.campaignId) {
        const c = await this.d.store.getCampaign(s.campaignId);
        if (c?.state === "running") out.push(`re-issue campaign ${s.campaignId} is still running`);
      }
      for (const n of await this.liveNodes()) {
        const certs = n.reported?.certificates ?? [];
        if (!certs.length) out.push(`${n.name}: has not reported its certificates`);
        for (const c of certs) {
          const rec = await this.d.store.getCertificate(c.serial);
          if (rec?.issuerFingerprint !== s.newFingerprint) out.push(`${n.name}: ${c.kind} certificate ${c.serial} is from the old CA`);
        }
      }
    }
    return out;
  }

  private async toSwitch(s: CaRotationState): Promise<CaRotationState> {
    const old = this.d.authority.signer;
    const next = await loadCa(nextCaPaths(this.d.paths));
    this.d.authority.set(next, old, await this.ensureCross(old, next));
    // The new CA signs now, so neither service certificate is signed by the signer: both re-issued.
    await this.d.ensureServiceCertificates(`CA rotation ${s.id}: switch to the new CA`);
    // Replicas: every replica signs from the new CA before the re-issue campaign reaches a node.
    await this.d.publish?.({ ...s, phase: "switch" });
    const c = (await this.liveNodes()).length
      ? await this.d.campaigns.start({ nodes: "all", maxInFlight: this.d.maxInFlight, which: ["client", "serving"], reason: `CA rotation ${s.id}: re-issue from the new CA` })
      : undefined;
    const ns = { ...s, phase: "switch" as const, campaignId: c?.id };
    await this.saveState(ns);
    this.d.logger.info("CA rotation: switch; the new CA signs", { rotation: s.id, campaign: c?.id });
    return ns;
  }

  private async toFinish(s: CaRotationState): Promise<CaRotationState> {
    const finishing = { ...s, phase: "finishing" as const };
    await this.saveState(finishing);
    await this.finishFiles(finishing);
    this.d.authority.set(await loadCa(this.d.paths));
    const done = { ...finishing, phase: "done" as const, finishedAt: this.d.clock().toISOString() };
    await this.saveState(done);
    await this.afterTrustChange();
    this.d.logger.info("CA rotation: finished; the old CA left the trust bundle", { rotation: s.id });
    return done;
  }

  /** ca/ → ca-old-<id>/, ca-next/ → ca/. Idempotent, so a crash in between is finished on start (see completeInterruptedFinish). */
  private async finishFiles(s: CaRotationState): Promise<void> {
    const p = this.d.paths;
    const np = nextCaPaths(p);
    const archive = path.join(p.dir, `ca-old-${s.id}`);
    if (existsSync(np.caDir)) {
      if (!existsSync(archive)) await fs.rename(p.caDir, archive);
      // The cross-certificate is the old CA's word for the new one: it goes with the old CA.
      if (existsSync(crossCertPath(p))) await fs.rename(crossCertPath(p), path.join(archive, "cross-signed-next.crt"));
      await fs.rename(np.caDir, p.caDir);
    }
  }

  /** The trust bundle changed: the server's client-CA list, the admin's ca.crt, every connected node. */
  private async afterTrustChange(): Promise<void> {
    await writeFileAtomic(this.d.paths.adminCa, this.d.authority.trustBundle, 0o600);
    await this.d.reloadTls();
    for (const node of this.d.hub.connectedNodes()) this.d.hub.pushTrustBundle(node, this.d.authority.trustBundleMessage());
  }

  private async saveState(s: CaRotationState): Promise<void> {
    await this.d.store.setKv(KEY, s);
    // "finishing" is a crash marker between two file moves: replicas get the state after them.
    if (s.phase !== "finishing") await this.d.publish?.(s);
  }

  /**
   * Another replica changed the CA (its files are written here already): take the signer and
   * trust for the stored phase, re-issue this replica's TLS and admin certificates from the new
   * signer if needed, and hand connected nodes the new bundle.
   */
  reload(published?: CaRotationState): Promise<void> {
    return this.serial(async () => {
      // The state published with the files, not the stored one: a phase's files are published
      // (and every replica waited for) before the leader stores the phase.
      const s = published ?? (await this.state());
      const current = await loadCa(this.d.paths);
      if (!s || s.phase === "done" || s.phase === "finishing") this.d.authority.set(current);
      else {
        const next = await loadCa(nextCaPaths(this.d.paths));
        const cross = await fs.readFile(crossCertPath(this.d.paths), "utf8");
        if (s.phase === "prepare") this.d.authority.set(current, next, cross);
        else this.d.authority.set(next, current, cross);
      }
      await this.d.ensureServiceCertificates(`CA changed on another replica (${s?.id ?? "initial"}: ${s?.phase ?? "none"})`);
      await this.afterTrustChange();
    });
  }
}

/**
 * A kill between finish's two renames leaves no ca/ (moved to ca-old-<id>/) and ca-next/ in place:
 * nothing could load a CA, and the server would not start to resume the rotation. Called before
 * the CA is loaded, it makes the second move. Only that exact shape is repaired: with ca/ present,
 * or without an archive from this rotation's first move, it does nothing.
 */
export async function completeInterruptedFinish(p: ServerPaths): Promise<boolean> {
  const np = nextCaPaths(p);
  if (existsSync(p.caDir) || !existsSync(np.caCert)) return false;
  const archives = (await fs.readdir(p.dir)).filter((n) => n.startsWith("ca-old-"));
  if (!archives.length) return false;
  await fs.rename(np.caDir, p.caDir);
  return true;
}
