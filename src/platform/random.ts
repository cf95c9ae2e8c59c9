// A uniform draw in [0, 1) from the CSPRNG (48 bits: enough resolution for deadlines and jitter).
import { randomBytes } from "node:crypto";

export function uniform(): number {
  return randomBytes(6).readUIntBE(0, 6) / 2 ** 48;
}
