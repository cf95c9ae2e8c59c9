// FIPS support in one import: detection (detect.ts), the self-test (self-test.ts), the
// algorithm policy (fips-policy.ts) and switching the process onto the provider (fips-exec.ts).
export * from "./detect.js";
export * from "./self-test.js";
export * from "./fips-policy.js";
export * from "./fips-exec.js";
