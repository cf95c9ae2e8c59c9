// An error that carries the HTTP status and the body a client should see.
import type { ErrorBody } from "../../protocol/messages.js";

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly reason: string,
    readonly rule?: string,
  ) {
    super(reason);
  }

  body(): ErrorBody {
    return this.rule ? { error: this.code, rule: this.rule, reason: this.reason } : { error: this.code, reason: this.reason };
  }
}
