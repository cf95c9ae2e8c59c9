#!/usr/bin/env bash
# The whole test suite: dependencies, type check, lint, build, mocha.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/test-deps.sh
npx --no-install tsc --noEmit -p .
# Lint (eslint.config.js says which rules and why); any warning fails the run.
npx --no-install eslint --max-warnings 0 src test scripts
# Every spawned CLI and daemon runs bin/nodecert, i.e. dist/: build it now so no test runs stale code.
node scripts/build.mjs
# Named files run alone; no arguments runs everything.
if [ $# -eq 0 ]; then set -- "test/**/*.test.ts"; fi
exec npx --no-install mocha "$@"
