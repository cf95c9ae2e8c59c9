// The FIPS modes a configuration may ask for. A leaf module: configuration schemas import it
// without loading provider detection or the re-exec machinery.
export const FIPS_MODES = ["auto", "on", "off"] as const;
export type FipsMode = (typeof FIPS_MODES)[number];

export function parseFipsMode(s: string): FipsMode {
  if ((FIPS_MODES as readonly string[]).includes(s)) return s as FipsMode;
  throw new Error(`invalid fips mode "${s}": use auto, on or off`);
}
