// `nodecert audit-log export`: the control plane's audit trail as JSON lines (one event a line),
// on stdout or into a 0600 file, e.g. before retention prunes it. Reads the server's database.
import { existsSync } from "node:fs";
import type { CliEnv } from "./env.js";

export interface AuditLogExportOptions {
  dir: string;
  before?: string;
  output?: string;
}

/** An ISO time, or a duration meaning "that long ago". */
function parseBefore(text: string, now: Date, parseDuration: (s: string) => number): Date {
  const t = Date.parse(text);
  if (/^\d{4}-\d\d-\d\d/.test(text) && Number.isFinite(t)) return new Date(t);
  try {
    return new Date(now.getTime() - parseDuration(text));
  } catch {
    throw new Error(`--before "${text}": give an ISO time (2026-01-31T00:00:00Z) or a duration such as 400d`);
  }
}

export async function auditLogExport(env: CliEnv, o: AuditLogExportOptions): Promise<void> {
  const [{ serverPaths }, { SqliteStore }, { auditJsonLine, writeJsonLines }, { parseDuration }] = await Promise.all([
    import("../server/paths.js"),
    import("../server/store/sqlite.js"),
    import("../server/retention.js"),
    import("../config/duration.js"),
  ]);
  const db = serverPaths(o.dir).db;
  if (!existsSync(db)) throw new Error(`no server database at ${db}: pass --dir with the control plane's directory`);
  const before = o.before ? parseBefore(o.before, env.now(), parseDuration) : new Date(8.64e15);
  const store = new SqliteStore(db);
  try {
    if (o.output) {
      const n = await writeJsonLines(o.output, store.auditBefore(before));
      env.stderr.write(`exported ${n} audit event(s) to ${o.output}\n`);
    } else {
      for await (const e of store.auditBefore(before)) env.stdout.write(auditJsonLine(e));
    }
  } finally {
    await store.close();
  }
}
