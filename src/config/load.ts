// Reads a YAML config file and validates it against a schema; errors name the file and field.
import { readFileSync, existsSync } from "node:fs";
import YAML from "yaml";
import type * as z from "zod";
import { describeZodError } from "../protocol/messages.js";

export function loadYamlConfig<T extends z.ZodTypeAny>(schema: T, file: string | undefined, overrides: Record<string, unknown> = {}): z.infer<T> {
  let raw: unknown = {};
  if (file && existsSync(file)) {
    try {
      raw = YAML.parse(readFileSync(file, "utf8")) ?? {};
    } catch (e) {
      throw new Error(`cannot parse ${file}: ${(e as Error).message}`);
    }
  }
  const merged = { ...(raw as Record<string, unknown>), ...stripUndefined(overrides) };
  const r = schema.safeParse(merged);
  if (!r.success) throw new Error(`invalid configuration${file ? ` in ${file}` : ""}: ${describeZodError(r.error)}`);
  return r.data;
}

function stripUndefined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}
