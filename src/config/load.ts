// Reads a YAML config file and validates it against a schema; errors name the file and field.
import type * as z from "zod";
import { describeZodError } from "../protocol/messages.js";
import { readYamlFile } from "./yaml-file.js";

export function loadYamlConfig<T extends z.ZodTypeAny>(schema: T, file: string | undefined, overrides: Record<string, unknown> = {}): z.infer<T> {
  const raw = readYamlFile(file);
  const merged = { ...(raw as Record<string, unknown>), ...stripUndefined(overrides) };
  const r = schema.safeParse(merged);
  if (!r.success) throw new Error(`invalid configuration${file ? ` in ${file}` : ""}: ${describeZodError(r.error)}`);
  return r.data;
}

function stripUndefined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}
