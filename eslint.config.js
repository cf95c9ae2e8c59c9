// ESLint for src/, test/ and scripts/ (typescript-eslint, flat config). `npm test` runs it with
// --max-warnings 0. The rule set, and why:
// - @eslint/js + typescript-eslint "recommended": real bugs (unused code, unreachable branches,
//   duplicate keys, `any` leaking in, non-null assertions on optional chains) with no style noise;
//   formatting is not linted.
// - no-floating-promises (type-aware): an un-awaited promise is an unhandled rejection waiting to
//   crash the agent; fire-and-forget must say so with `void`.
// - no-misused-promises (arguments only): an async callback where a sync one is expected loses
//   its rejection (event emitters, timers).
// - The shape rules of the design: the node's files have one owner (agent/node-store.ts; the
//   modules it is built from are off limits to the rest of src/), timers come from the injected
//   clock (src/platform/clock.ts) rather than the global setTimeout/setInterval, and imports flow
//   one way (pki/protocol import nothing above them; config/crypto/platform nothing from
//   agent/server/cli).
import js from "@eslint/js";
import tseslint from "typescript-eslint";

const NODE_FILES = ["state", "apply", "install", "recover", "prune"].flatMap((m) => [`./${m}.js`, `../${m}.js`, `**/agent/${m}.js`]);
const layer = (files, forbidden, why) => ({
  files,
  rules: { "no-restricted-imports": ["error", { patterns: [{ group: forbidden, message: why }] }] },
});

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "coverage/**", "**/*.cjs", "**/*.mjs", "eslint.config.js"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": ["error", { checksVoidReturn: { arguments: true, attributes: false, properties: false, returns: false, variables: false } }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }],
      // Non-null assertions are used where a lookup was just checked; the type system cannot see it.
      "@typescript-eslint/no-non-null-assertion": "off",
      // `let x; ... x = await build(); closure reads x`: the closure is defined before the assignment.
      "prefer-const": ["error", { ignoreReadBeforeAssign: true }],
      "@typescript-eslint/no-unused-expressions": ["error", { allowShortCircuit: true }],
      // Empty catch blocks in this code base say why in a comment; an empty block without one is an error.
      "no-empty": ["error", { allowEmptyCatch: false }],
    },
  },
  {
    // Tests build hostile input on purpose: control characters and literal runs of spaces in
    // regular expressions are what they assert on.
    files: ["test/**/*.ts"],
    rules: { "no-control-regex": "off", "no-regex-spaces": "off" },
  },
  {
    files: ["src/**/*.ts"],
    // The etcd client plumbing paces probes and reconnects to a real etcd (network time, not the
    // domain's): the replica tests run against real etcd members, where a fake clock has no say.
    ignores: ["src/platform/clock.ts", "src/server/store/etcd.ts", "src/server/fleet/replicas.ts", "src/server/ca/ca-sync.ts"],
    rules: {
      "no-restricted-globals": [
        "error",
        { name: "setTimeout", message: "Use the injected Clock (src/platform/clock.ts) so tests can advance time." },
        { name: "setInterval", message: "Use the injected Clock (src/platform/clock.ts) so tests can advance time." },
      ],
    },
  },
  {
    files: ["src/**/*.ts"],
    ignores: ["src/agent/node-store.ts", "src/agent/state.ts", "src/agent/apply.ts", "src/agent/install.ts", "src/agent/recover.ts", "src/agent/prune.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        { patterns: [{ group: NODE_FILES, allowTypeImports: true, message: "The node's files belong to agent/node-store.ts: ask the NodeStore." }] },
      ],
    },
  },
  layer(["src/pki/**/*.ts", "src/protocol/**/*.ts"], ["**/crypto/**", "**/config/**", "**/platform/**", "**/agent/**", "**/server/**", "**/cli/**", "**/ui/**"], "pki/ and protocol/ are the bottom layer: they import nothing above them."),
  layer(["src/crypto/**/*.ts", "src/config/**/*.ts", "src/platform/**/*.ts"], ["**/agent/**", "**/server/**", "**/cli/**", "**/ui/**"], "crypto/, config/ and platform/ sit below agent/ and server/: move the shared piece down instead."),
  layer(["src/agent/**/*.ts"], ["**/server/**", "**/cli/**"], "The agent does not import the server or the CLI."),
);
