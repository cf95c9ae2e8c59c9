// Outcome codes for agent errors: code switches on `code`, people read `message`.
export type AgentErrorCode =
  /** Another nodecert process holds the state directory's lock (and did not let go in time). */
  | "locked"
  | "missing"
  | "permission-denied"
  | "read-only"
  | "disk-full"
  | "unreadable"
  | "corrupt-state"
  | "newer-state";

export class AgentError extends Error {
  constructor(
    readonly code: AgentErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The outcome code for a failed file operation, from its errno. */
export function codeForErrno(errno: string | undefined): AgentErrorCode {
  switch (errno) {
    case "ENOENT":
      return "missing";
    case "EACCES":
    case "EPERM":
      return "permission-denied";
    case "EROFS":
      return "read-only";
    case "ENOSPC":
    case "EDQUOT":
      return "disk-full";
    default:
      return "unreadable";
  }
}

export function errorCode(e: unknown): string | undefined {
  const c = (e as { code?: unknown } | undefined)?.code;
  return typeof c === "string" ? c : undefined;
}
