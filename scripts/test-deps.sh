#!/usr/bin/env bash
# Installs what the test suite's real peers need (openssl, kubectl, sqlite3, systemd-analyze and
# systemd-notify from the systemd package, python3 to receive sd_notify datagrams; unshare, setpriv
# and prlimit from util-linux, ps and pgrep from procps and curl for the privilege, limit and
# systemd-in-a-namespace tests; faketime's libfaketime for clock skew; chromium for the dashboard's
# browser tests). With CI=true a dependency
# that cannot be installed fails the run; elsewhere tests that need it skip with a message.
set -u
need=()
command -v openssl >/dev/null || need+=(openssl)
command -v kubectl >/dev/null || need+=(kubectl)
command -v sqlite3 >/dev/null || need+=(sqlite3)
{ command -v systemd-analyze && command -v systemd-notify; } >/dev/null || need+=(systemd)
command -v python3 >/dev/null || need+=(python3)
{ command -v unshare && command -v setpriv && command -v prlimit; } >/dev/null || need+=(util-linux)
{ command -v ps && command -v pgrep; } >/dev/null || need+=(procps)
command -v curl >/dev/null || need+=(curl)
# libfaketime, preloaded into the agent for the clock-skew join tests.
command -v faketime >/dev/null || need+=(faketime)
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
echo "test-deps: installing ${need[*]}" >&2
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
  # One at a time: a package missing from this machine's sources must not block the others.
  for p in "${need[@]}"; do
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$p" >/dev/null 2>&1 && continue
    # Debian itself ships kubectl as kubernetes-client; "kubectl" comes from Google's repository.
    if [ "$p" = kubectl ]; then DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq kubernetes-client >/dev/null 2>&1; fi
  done
fi
for t in "${need[@]}"; do
  tool=$t
  [ "$t" = systemd ] && tool=systemd-analyze
  [ "$t" = util-linux ] && tool=unshare
  [ "$t" = procps ] && tool=pgrep
  if ! command -v "$tool" >/dev/null; then
    if [ "${CI:-}" = true ]; then echo "test-deps: $t is required in CI and could not be installed" >&2; exit 1; fi
    echo "test-deps: $t is missing; tests that need it will be skipped" >&2
  fi
done
exit 0
