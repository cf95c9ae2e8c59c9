#!/usr/bin/env bash
# Builds the OpenSSL FIPS provider (fips.so) from Debian's `openssl` source package and installs
# its fipsmodule.cnf with `openssl fipsinstall`, into a cache directory reused across runs.
#
#   bash scripts/fips-provider.sh            # prints the directory on its last stdout line
#
# NODECERT_FIPS_CACHE  cache directory (default /var/cache/nodecert-fips)
# NODECERT_FIPS_REBUILD=1  ignore a cached provider and build again
#
# The cache holds fips.so, fipsmodule.cnf, VERSION (the Debian source version) and
# build-seconds (how long the last build took). A cached provider is reused only when
# `openssl fipsinstall -verify` accepts it. Everything else goes to stderr.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive LC_ALL=C

CACHE=${NODECERT_FIPS_CACHE:-/var/cache/nodecert-fips}
log() { echo "fips-provider: $*" >&2; }
die() { echo "fips-provider: error: $*" >&2; exit 1; }

verify() { # <dir>: the module and its config agree (HMAC of fips.so, install status)
  [ -f "$1/fips.so" ] && [ -f "$1/fipsmodule.cnf" ] || return 1
  openssl fipsinstall -module "$1/fips.so" -in "$1/fipsmodule.cnf" -provider_name fips \
    -section_name fips_sect -verify >/dev/null 2>&1
}

if [ "${NODECERT_FIPS_REBUILD:-0}" != 1 ] && command -v openssl >/dev/null && verify "$CACHE"; then
  log "reusing the FIPS provider in $CACHE ($(cat "$CACHE/VERSION" 2>/dev/null || echo 'unknown version'))"
  echo "$CACHE"
  exit 0
fi

# --- build dependencies --------------------------------------------------------------------
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi; }
command -v apt-get >/dev/null || die "apt-get not found: this script needs Debian/Ubuntu to fetch the openssl source package"

missing=()
command -v gcc >/dev/null && command -v make >/dev/null || missing+=(build-essential)
command -v perl >/dev/null || missing+=(perl)
command -v dpkg-source >/dev/null || missing+=(dpkg-dev)
command -v openssl >/dev/null || missing+=(openssl)

# deb-src entries: derive them from the configured binary sources when there are none.
have_src() { grep -Rqs -E '^(deb-src |Types:.*deb-src)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null; }
if ! have_src; then
  log "adding deb-src entries (/etc/apt/sources.list.d/nodecert-deb-src.*)"
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    sed -E 's/^Types:.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
      | as_root tee /etc/apt/sources.list.d/nodecert-deb-src.sources >/dev/null \
      || die "cannot write /etc/apt/sources.list.d/nodecert-deb-src.sources (run as root)"
  elif [ -f /etc/apt/sources.list ] && grep -qE '^deb ' /etc/apt/sources.list; then
    grep -E '^deb ' /etc/apt/sources.list | sed -E 's/^deb /deb-src /' \
      | as_root tee /etc/apt/sources.list.d/nodecert-deb-src.list >/dev/null \
      || die "cannot write /etc/apt/sources.list.d/nodecert-deb-src.list (run as root)"
  else
    die "no apt sources found to derive a deb-src entry from (/etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list)"
  fi
  need_update=1
fi
if [ ${#missing[@]} -gt 0 ] || [ "${need_update:-0}" = 1 ] || ! apt-get source --print-uris -qq openssl >/dev/null 2>&1; then
  log "apt-get update"
  as_root apt-get update -qq >/dev/null || die "apt-get update failed (are you root, is the network up?)"
fi
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "cannot install build dependencies: ${missing[*]}"
fi

# --- fetch and build ----------------------------------------------------------------------
mkdir -p "$CACHE" || die "cannot create the cache directory $CACHE (set NODECERT_FIPS_CACHE)"
CACHE=$(cd "$CACHE" && pwd)
work=$(mktemp -d "$CACHE/build.XXXXXX")
tmp=
trap 'rm -rf "$work" ${tmp:+"$tmp"}' EXIT
start=$(date +%s)

# Newest source version first; a mirror that lacks one (a security pocket lagging behind its
# index) falls through to the next.
versions=$(apt-cache showsrc openssl 2>/dev/null | sed -n 's/^Version: //p' | sort -u -rV)
[ -n "$versions" ] || die "apt-cache showsrc openssl lists no source package (deb-src entries missing?)"
src=
for v in $versions; do
  log "fetching Debian's openssl $v source package into $work"
  if (cd "$work" && apt-get source -qq "openssl=$v" >"$work/source.log" 2>&1); then
    src=$(find "$work" -maxdepth 1 -mindepth 1 -type d -name 'openssl-*' | head -1)
    [ -n "$src" ] && break
  fi
  log "openssl $v: $(grep -E '^E:' "$work/source.log" | head -1 || true)"
  find "$work" -mindepth 1 -maxdepth 1 ! -name '*.log' -exec rm -rf {} +
done
[ -n "$src" ] || { tail -20 "$work/source.log" >&2; die "apt-get source openssl failed for every version ($(echo $versions))"; }
version=$(cd "$src" && dpkg-parsechangelog -S Version 2>/dev/null || basename "$src")
log "building the FIPS provider from openssl $version ($(nproc) jobs; takes a few minutes)"

jobs=$(nproc)
(
  cd "$src"
  ./Configure enable-fips no-tests shared >"$work/build.log" 2>&1
  make -j"$jobs" build_generated >>"$work/build.log" 2>&1
  make -j"$jobs" providers/fips.so >>"$work/build.log" 2>&1
) || { tail -30 "$work/build.log" >&2; die "building fips.so failed (log above; full log was $work/build.log)"; }
[ -f "$src/providers/fips.so" ] || die "the build finished but $src/providers/fips.so is missing"

# Install: the module, then its configuration (self-tests run now; MACs over the module).
tmp=$(mktemp -d "$CACHE/new.XXXXXX")
install -m 0644 "$src/providers/fips.so" "$tmp/fips.so"
openssl fipsinstall -module "$tmp/fips.so" -out "$tmp/fipsmodule.cnf" -provider_name fips \
  -section_name fips_sect >"$work/fipsinstall.log" 2>&1 \
  || { cat "$work/fipsinstall.log" >&2; die "openssl fipsinstall failed for $tmp/fips.so"; }
verify "$tmp" || die "openssl fipsinstall -verify rejects the freshly installed provider in $tmp"
chmod 0644 "$tmp/fipsmodule.cnf"
echo "$version" >"$tmp/VERSION"
echo $(( $(date +%s) - start )) >"$tmp/build-seconds"
for f in fips.so fipsmodule.cnf VERSION build-seconds; do mv -f "$tmp/$f" "$CACHE/$f"; done
verify "$CACHE" || die "the provider in $CACHE does not verify after install"
log "built the FIPS provider (openssl $version) in $(cat "$CACHE/build-seconds")s"
echo "$CACHE"
