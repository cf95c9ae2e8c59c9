// What the agent does with a command the control plane pushed over the channel (rotate,
// trust-bundle, evict), and the certificate report it sends up. The transport (transport.ts)
// authenticates the connection and hands each parsed message here.
import { createHash, X509Certificate } from "node:crypto";
import type { ServerMessage, CertificateReport } from "../../protocol/channel.js";
import type { Logger } from "../../platform/log.js";
import { certificateInfo } from "../../pki/certificate-info.js";
import { splitCertificates } from "../../pki/pem.js";
import { chainProblems } from "../../pki/verify.js";
import type { NodeStore } from "../node-store.js";
import type { Renewer } from "../renewer.js";

export interface CommandDeps {
  store: NodeStore;
  logger: Logger;
  clock: () => Date;
  renewer: Renewer;
}

/** What a command may do on the connection it came in on. */
export interface CommandLink {
  send(msg: Record<string, unknown>): void;
  sendStatus(): Promise<void>;
  /** The control plane's certificate chain from this connection's handshake. */
  peerChain(): string | undefined;
  evicted(reason: string): Promise<void>;
}

export class ChannelCommands {
  constructor(private readonly d: CommandDeps) {}

  async handle(msg: ServerMessage, link: CommandLink): Promise<void> {
    const log = this.d.logger;
    try {
      if (msg.type === "rotate") {
        log.info("rotation pushed by the control plane", { which: msg.which, reason: msg.reason, keyAlgorithm: msg.keyAlgorithm });
        if (msg.keyAlgorithm) await this.d.renewer.setKeyAlgorithm(msg.keyAlgorithm);
        const out = await this.d.renewer.renew(msg.which, { force: true });
        const serials: Record<string, string> = {};
        for (const r of out.renewed) serials[r.kind] = r.serial;
        link.send({ type: "ack", commandId: msg.id, result: out.error ? "error" : "ok", serials, error: out.error?.slice(0, 2000) });
        await link.sendStatus();
      } else if (msg.type === "trust-bundle") {
        const problem = await this.checkBundle(link, msg.bundle, msg.vouchers ?? []);
        if (problem) {
          log.error("refusing a pushed trust bundle", { reason: problem });
          link.send({ type: "ack", commandId: msg.id, result: "error", error: problem });
        } else {
          await this.d.store.installTrustBundle(msg.bundle);
          log.info("installed a pushed trust bundle", { certificates: splitCertificates(msg.bundle).length });
          link.send({ type: "ack", commandId: msg.id, result: "ok" });
          await link.sendStatus();
        }
      } else if (msg.type === "evict") {
        await link.evicted(msg.reason);
      }
    } catch (e) {
      log.error("handling a control-plane command failed", { type: msg.type, error: (e as Error).message });
      if (msg.type !== "evict") link.send({ type: "ack", commandId: msg.id, result: "error", error: (e as Error).message.slice(0, 2000) });
    }
  }

  /** The installed certificates as the server sees them in hello/status. */
  async certificates(): Promise<CertificateReport[]> {
    const out: CertificateReport[] = [];
    for (const kind of ["client", "serving"] as const) {
      const read = await this.d.store.readCurrent(kind);
      if (read.state === "unreadable") this.d.logger.warn("cannot report a certificate to the control plane", { kind, code: read.code, reason: read.reason });
      if (read.state !== "present") continue;
      const i = certificateInfo(splitCertificates(read.pem)[0]);
      out.push({ kind, serial: i.serial, notAfter: i.notAfter.toISOString(), keyAlgorithm: i.keyAlgorithm ?? i.keyDescription, issuer: i.issuer });
    }
    return out;
  }

  async trustSha(): Promise<string | undefined> {
    const ca = await this.d.store.readTrustBundle();
    return ca === undefined ? undefined : createHash("sha256").update(ca).digest("hex");
  }

  /**
   * A pushed bundle must hold CA certificates and still verify the control plane we talk to, and
   * it may add a CA only with a voucher: a cross-certificate with exactly that CA's subject and
   * key, signed by a CA this node trusts already. Dropping CAs needs no voucher.
   */
  private async checkBundle(link: CommandLink, bundle: string, vouchers: string[]): Promise<string | undefined> {
    const certs = splitCertificates(bundle);
    if (!certs.length) return "the bundle holds no certificate";
    for (const c of certs) {
      if (!certificateInfo(c).isCA) return `"${certificateInfo(c).subject}" in the bundle is not a CA certificate`;
    }
    const now = this.d.clock();
    const trusted = splitCertificates((await this.d.store.readTrustBundle()) ?? "").map((p) => new X509Certificate(p));
    const vouched = vouchers.flatMap(splitCertificates).map((p) => new X509Certificate(p));
    for (const pem of certs) {
      const ca = new X509Certificate(pem);
      if (trusted.some((t) => sameCa(t, ca))) continue;
      const voucher = vouched.find((v) => sameCa(v, ca) && v.ca && validAt(v, now) && trusted.some((t) => validAt(t, now) && v.checkIssued(t) && v.verify(t.publicKey)));
      if (!voucher) {
        return (
          `the bundle adds CA "${ca.subject.replace(/\n/g, ", ")}" (${certificateInfo(pem).spkiPin}), and no voucher from a CA this node trusts vouches for it; refusing it. ` +
          `A CA rotation's new CA comes with a cross-certificate from the current CA; anything else is not the control plane's to add`
        );
      }
    }
    const chain = link.peerChain();
    if (!chain) return "cannot read the control plane's certificate to check the bundle against";
    const problems = chainProblems(chain, bundle, now);
    if (problems.length) return `the bundle would not trust the control plane's own certificate (${problems.join("; ")}); refusing it`;
    return undefined;
  }
}

/** The same CA: subject and public key (a cross-certificate or a re-issue of it counts). */
function sameCa(a: X509Certificate, b: X509Certificate): boolean {
  return a.subject === b.subject && a.publicKey.export({ format: "der", type: "spki" }).equals(b.publicKey.export({ format: "der", type: "spki" }));
}

function validAt(c: X509Certificate, now: Date): boolean {
  return new Date(c.validFrom) <= now && now < new Date(c.validTo);
}
