#!/usr/bin/env bash
# The whole test suite: dependencies, type check, mocha.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/test-deps.sh
npx --no-install tsc --noEmit -p .
exec npx --no-install mocha "$@"
