// Reads a YAML file into plain data (no schema): the FIPS decision at startup needs two settings
// before anything else is loaded; load.ts validates the whole file.
import { existsSync, readFileSync } from "node:fs";
import YAML from "yaml";

/** {} when there is no file; throws "cannot parse FILE: ..." when it is not YAML. */
export function readYamlFile(file: string | undefined): unknown {
  if (!file || !existsSync(file)) return {};
  try {
    return YAML.parse(readFileSync(file, "utf8")) ?? {};
  } catch (e) {
    throw new Error(`cannot parse ${file}: ${(e as Error).message}`, { cause: e });
  }
}
