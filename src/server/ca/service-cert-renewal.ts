// Keeps the server's own certificates (TLS serving, admin client) valid while it runs: checked at
// start, on a timer and when the CA rotation switches signers; re-issued from the current signer
// when decideServiceCert says so; the TLS one hot-swapped into the listening server.
import { promises as fs } from "node:fs";
import type { Logger } from "../../platform/log.js";
import type { RandomBytes } from "../../pki/certificate.js";
import type { Authority } from "./authority.js";
import type { ServerPaths } from "../paths.js";
import type { Store } from "../store/store.js";
import { decideServiceCert, leafSerial } from "./service-cert-decision.js";
import { issueServiceCert, serviceCerts, type ServiceCert } from "./service-certs.js";
import { toClock, type ClockLike } from "../../platform/clock.js";
import { SerialQueue } from "../../platform/serial-queue.js";

export const DEFAULT_SERVICE_CERT_CHECK_MS = 3_600_000;

export type SetTimer = (fn: () => void, ms: number) => { cancel(): void };

export interface ServiceCertRenewalDeps {
  paths: ServerPaths;
  store: Store;
  authority: Authority;
  logger: Logger;
  clock: ClockLike;
  random: RandomBytes;
  /** server.yaml `sans`: the names the TLS certificate must carry. */
  sans: string[];
  /** Re-applies the TLS identity to the listening server (a no-op before it listens). */
  reloadTls: () => Promise<void>;
  /** Defaults to the clock's timers. */
  setTimer?: SetTimer;
  intervalMs: number;
}

export interface ServiceCertOutcome {
  certificate: ServiceCert["kind"];
  action: "kept" | "reissued" | "failed";
  /** Why it was re-issued, why it failed, or a warning about a kept one. */
  reason?: string;
  serial?: string;
  notAfter?: Date;
}

export class ServiceCertRenewal {
  private readonly queue = new SerialQueue();
  private timer?: { cancel(): void };
  private stopped = false;

  constructor(private readonly d: ServiceCertRenewalDeps) {}

  /**
   * Checks both certificates and re-issues what needs it. Serialized (the timer and a CA rotation
   * may ask at once; both write the same files). Rejects when a re-issue failed, after trying both.
   */
  check(trigger: string): Promise<ServiceCertOutcome[]> {
    return this.queue.run(() => this.checkNow(trigger));
  }

  /** Checks every `intervalMs` until stop(). */
  start(): void {
    if (this.stopped || this.timer) return;
    const setTimer: SetTimer = this.d.setTimer ?? ((fn, ms) => toClock(this.d.clock).setTimeout(fn, ms, { unref: true }));
    this.timer = setTimer(() => {
      this.timer = undefined;
      // Failures were logged per certificate by check(); the next round retries them.
      void this.check("periodic check").catch(() => undefined).finally(() => this.start());
    }, this.d.intervalMs);
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
  }

  /** Resolves once no check is running. */
  async idle(): Promise<void> {
    await this.queue.idle();
  }

  private async checkNow(trigger: string): Promise<ServiceCertOutcome[]> {
    const log = this.d.logger;
    const outcomes: ServiceCertOutcome[] = [];
    for (const svc of serviceCerts(this.d.paths, this.d.sans)) {
      try {
        outcomes.push(await this.checkOne(svc, trigger));
      } catch (e) {
        const reason = (e as Error).message;
        log.error(`cannot re-issue the ${svc.label}; retrying at the next check`, { certificate: svc.kind, file: svc.certFile, trigger, error: reason });
        outcomes.push({ certificate: svc.kind, action: "failed", reason });
      }
    }
    if (outcomes.some((o) => o.certificate === "server" && o.action === "reissued")) await this.d.reloadTls();
    const failed = outcomes.filter((o) => o.action === "failed");
    if (failed.length) throw new Error(`re-issuing the server's own certificates failed: ${failed.map((o) => `${o.certificate}: ${o.reason}`).join("; ")}`);
    return outcomes;
  }

  private async checkOne(svc: ServiceCert, trigger: string): Promise<ServiceCertOutcome> {
    const now = this.d.clock();
    const [certPem, keyPem] = await Promise.all([readIfExists(svc.certFile), readIfExists(svc.keyFile)]);
    const serial = leafSerial(certPem);
    const recorded = serial === undefined ? undefined : (await this.d.store.getCertificate(serial))?.kind === svc.kind;
    const signer = this.d.authority.signer;
    const decision = decideServiceCert({ certPem, keyPem, signerCertPem: signer.issuer.certPem, sans: svc.sans, extendedKeyUsages: svc.extendedKeyUsages, recorded, now });
    if (decision.action === "keep") {
      const fields = { certificate: svc.kind, serial: decision.serial, notAfter: decision.notAfter.toISOString(), renewAfter: decision.renewAt.toISOString(), trigger };
      if (decision.warning) this.d.logger.warn(`the ${svc.label} cannot be renewed`, { ...fields, reason: decision.warning });
      // Said once at start (when it will be renewed); the hourly checks only at debug level.
      else this.d.logger.log(trigger === "startup" ? "info" : "debug", `the ${svc.label} is valid`, fields);
      return { certificate: svc.kind, action: "kept", reason: decision.warning, serial: decision.serial, notAfter: decision.notAfter };
    }
    const rec = await issueServiceCert(signer, svc, { store: this.d.store, now, random: this.d.random });
    this.d.logger.info(`re-issued the ${svc.label}`, { certificate: svc.kind, reason: decision.reason, trigger, previousSerial: serial, serial: rec.serial, notAfter: rec.notAfter.toISOString(), file: svc.certFile });
    return { certificate: svc.kind, action: "reissued", reason: decision.reason, serial: rec.serial, notAfter: rec.notAfter };
  }
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Error(`cannot read ${file} (${(e as NodeJS.ErrnoException).code}): fix its ownership or permissions; the server runs as the user that ran 'nodecert server init'`, { cause: e });
  }
}
