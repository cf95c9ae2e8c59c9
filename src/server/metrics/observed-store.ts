// Watches the server's Store from outside (a Proxy), so issuance, denials, token failures and
// store latency are counted wherever they happen (HTTP routes, the channel, campaigns) without the
// domain code calling metrics. Every method is forwarded as it is, so a Store gains methods (etcd,
// i15) without this file changing; the target's own calls between its methods are not counted twice.
import type { AuditEvent, IssuedCertRecord, Store } from "../store/store.js";

export interface StoreObserver {
  /** A store call finished (ok or thrown) after `seconds`. */
  storeCall(operation: string, seconds: number, failed: boolean): void;
  issued(kind: string): void;
  audit(e: AuditEvent): void;
}

const COMMITS = new Set(["commitJoin", "commitRenewal"]);

export function observedStore<S extends Store>(store: S, o: StoreObserver, now: () => number = () => performance.now()): S {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== "function" || typeof prop !== "string" || prop === "constructor") return value;
      return (...args: unknown[]) => {
        const started = now();
        const done = (failed: boolean) => o.storeCall(prop, (now() - started) / 1000, failed);
        let result: unknown;
        try {
          result = (value as (...a: unknown[]) => unknown).apply(target, args);
        } catch (e) {
          done(true);
          throw e;
        }
        if (!(result instanceof Promise)) {
          done(false);
          return result;
        }
        return result.then(
          (r: unknown) => {
            done(false);
            observeOutcome(o, prop, args, r);
            return r;
          },
          (e: unknown) => {
            done(true);
            throw e;
          },
        );
      };
    },
  });
}

function observeOutcome(o: StoreObserver, method: string, args: unknown[], result: unknown): void {
  if (COMMITS.has(method)) {
    // Only a commit that recorded something issued something (any other outcome records nothing).
    if ((result as { code?: string } | undefined)?.code !== "ok") return;
    const c = args[0] as { certificates: IssuedCertRecord[]; audit: AuditEvent };
    for (const cert of c.certificates) o.issued(cert.kind);
    o.audit(c.audit);
  } else if (method === "recordCertificate") {
    o.issued((args[0] as IssuedCertRecord).kind);
  } else if (method === "audit" || method === "addSanGrants" || method === "removeSanGrants") {
    o.audit((method === "audit" ? args[0] : args[2]) as AuditEvent);
  }
}
