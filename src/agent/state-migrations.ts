// Agent state schema migrations. Version 1 is the base; each entry upgrades by one version.
// Never edit a released entry: append. A newer state than this code knows is refused, never
// rewritten (a snap revert runs older code against migrated state).

export interface StateMigration {
  /** The version this migration produces. */
  to: number;
  describe: string;
  up(state: Record<string, unknown>): Record<string, unknown>;
}

export const STATE_MIGRATIONS: StateMigration[] = [];

export const STATE_SCHEMA_VERSION = 1 + STATE_MIGRATIONS.length;

export class NewerStateError extends Error {}

/** Upgrades `raw` to the current schema; returns the migrated state and what was applied. */
export function migrateState(raw: Record<string, unknown>, file: string, migrations: StateMigration[] = STATE_MIGRATIONS): { state: Record<string, unknown>; applied: string[] } {
  const current = 1 + migrations.length;
  const from = typeof raw.schemaVersion === "number" ? raw.schemaVersion : 1;
  if (from > current) {
    throw new NewerStateError(
      `${file} has schema version ${from}, newer than this agent understands (${current}): ` +
        `it was written by a newer nodecert (after a snap revert or a downgrade); run that version, or restore the backup ${file}.v${current}.bak if one exists`,
    );
  }
  let state = { ...raw };
  const applied: string[] = [];
  for (const m of migrations.filter((x) => x.to > from).sort((a, b) => a.to - b.to)) {
    state = { ...m.up(state), schemaVersion: m.to };
    applied.push(`v${m.to - 1} → v${m.to}: ${m.describe}`);
  }
  return { state, applied };
}
