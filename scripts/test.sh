#!/usr/bin/env bash
# The whole test suite: dependencies, type check, build, mocha.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/test-deps.sh
npx --no-install tsc --noEmit -p .
# Every spawned CLI and daemon runs bin/nodecert, i.e. dist/: build it now so no test runs stale code.
node scripts/build.mjs
# Named files run alone; no arguments runs everything.
if [ $# -eq 0 ]; then set -- "test/**/*.test.ts"; fi
exec npx --no-install mocha "$@"
