#!/usr/bin/env bash
# Installs nodecert from this source tree (run `npm ci` first: it builds dist/) as a systemd
# service, without snap.
#
#   scripts/install.sh [--root DIR] [--prefix DIR]     install or upgrade (idempotent)
#   scripts/install.sh [--root DIR] [--prefix DIR] --uninstall
#
# What it installs, and records in <prefix>/.install-manifest:
#   <prefix> (default /usr/lib/nodecert)   package.json, package-lock.json, bin/, dist/ (the compiled
#                                          program, run by plain node) and node_modules/ without
#                                          devDependencies; no TypeScript sources, no tsx
#   /usr/bin/nodecert                      symlink to <prefix>/bin/nodecert
#   /etc/nodecert/                         0700; agent.yaml only if there is none (never overwritten)
#   /etc/systemd/system/nodecert-{agent,server}.service, then `systemctl daemon-reload`
#
# A second run with the same tree changes nothing. An upgrade restarts the units that are running
# (systemctl try-restart): a running agent loads parts of the program lazily from <prefix>/dist,
# which the upgrade replaced. --uninstall removes exactly what the manifest
# lists (agent.yaml only if it is still the default) and NEVER touches certificates, keys or
# state: /var/lib/kubelet/pki, /etc/kubernetes, /var/lib/nodecert, /var/lib/nodecert-server,
# /etc/nodecert/kek (nor anything else under /etc/nodecert that it did not create).
#
# --root DIR installs into a directory tree instead of / (tests, image builds): every path is
# prefixed with DIR and systemctl is not run. When DIR is on the same filesystem as this source
# tree, node_modules is hard-linked instead of copied (fast); the script never writes to a file
# it linked, it only unlinks.
set -euo pipefail

DEFAULT_PREFIX=/usr/lib/nodecert
UNITS=(nodecert-agent.service nodecert-server.service)
PROTECTED=(/var/lib/kubelet/pki /etc/kubernetes /var/lib/nodecert /var/lib/nodecert-server /etc/nodecert/kek)

say() { printf 'install.sh: %s\n' "$*"; }
warn() { printf 'install.sh: warning: %s\n' "$*" >&2; }
die() {
  printf 'install.sh: error: %s\n' "$*" >&2
  exit 1
}

usage() {
  sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'
}

root=""
prefix=$DEFAULT_PREFIX
action=install
while [ $# -gt 0 ]; do
  case "$1" in
    --root) [ $# -ge 2 ] || die "--root needs a directory"; root=$2; shift 2 ;;
    --root=*) root=${1#--root=}; shift ;;
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    --uninstall) action=uninstall; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

# --- paths --------------------------------------------------------------------------------------
case "$prefix" in
  /*) ;;
  *) die "--prefix must be an absolute path, got '$prefix'" ;;
esac
prefix=$(realpath -m -s -- "$prefix")
case "$prefix" in
  *[[:space:]#]*) die "--prefix must not contain spaces, tabs or '#', got '$prefix'" ;;
esac
# The prefix is removed as a whole on --uninstall: it must be nodecert's own directory.
case "$(basename -- "$prefix")" in
  *nodecert*) ;;
  *) die "--prefix must be a directory of its own named after nodecert (e.g. /opt/nodecert), got '$prefix'" ;;
esac
for p in "${PROTECTED[@]}" /etc/nodecert; do
  case "$prefix/" in
    "$p"/* ) die "--prefix $prefix is inside $p, which holds configuration, certificates or state" ;;
  esac
done

if [ -n "$root" ]; then
  mkdir -p -- "$root" || die "cannot create --root $root"
  root=$(cd -- "$root" && pwd -P)
  [ "$root" = / ] && root=""
fi
if [ -z "$root" ] && [ "$(id -u)" -ne 0 ]; then
  die "installing into / needs root (or pass --root DIR to install into a directory tree)"
fi

src_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
P=$root$prefix
MANIFEST=$P/.install-manifest
LINK=/usr/bin/nodecert
CONF_DIR=/etc/nodecert
AGENT_YAML=$CONF_DIR/agent.yaml
UNIT_DIR=/etc/systemd/system

systemd_running() { [ -z "$root" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }

daemon_reload() {
  if [ -n "$root" ]; then
    say "--root: not running systemctl daemon-reload"
  elif ! systemd_running; then
    say "systemd is not running on this machine: skipped systemctl daemon-reload"
  else
    systemctl daemon-reload
    say "ran systemctl daemon-reload"
  fi
}

# What --uninstall may remove for a manifest entry, whatever the manifest says (it could be
# edited or corrupt): each kind has exactly one place, and protected paths are never touched.
removable() {
  local kind=$1 p=$2 u
  for u in "${PROTECTED[@]}"; do
    case "$p/" in "$u"/*) return 1 ;; esac
  done
  case "$kind" in
    tree) [ "$p" = "$prefix" ] ;;
    link) [ "$p" = "$LINK" ] ;;
    config) [ "$p" = "$AGENT_YAML" ] ;;
    dir) [ "$p" = "$CONF_DIR" ] ;;
    unit)
      for u in "${UNITS[@]}"; do [ "$p" = "$UNIT_DIR/$u" ] && return 0; done
      return 1
      ;;
    *) return 1 ;;
  esac
}

sha256() { sha256sum -- "$1" | cut -d' ' -f1; }

# What goes into <prefix>.
PAYLOAD=(package.json package-lock.json bin dist node_modules)

# Content, modes and link targets of the named entries of a directory (read-only).
digest() {
  local dir=$1
  shift
  (
    cd -- "$dir"
    find -H "$@" -printf '%y %m %p -> %l\n' | LC_ALL=C sort
    find -H "$@" -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum --
  ) | sha256sum | cut -d' ' -f1
}

# --- uninstall ----------------------------------------------------------------------------------
if [ "$action" = uninstall ]; then
  if [ ! -f "$MANIFEST" ]; then
    say "nothing to uninstall: no manifest at $MANIFEST (not installed with this prefix)"
    exit 0
  fi
  mapfile -t entries < <(grep -v '^#' "$MANIFEST" | grep -v '^[[:space:]]*$')
  units_removed=0
  # Units first, so nothing runs from files that are about to go.
  for e in "${entries[@]}"; do
    read -r kind path _ <<<"$e"
    [ "$kind" = unit ] || continue
    removable unit "$path" || { warn "manifest entry '$e' is not a path this script installs; left alone"; continue; }
    name=$(basename -- "$path")
    if systemd_running; then
      systemctl disable --now -- "$name" >/dev/null 2>&1 && say "stopped and disabled $name" || warn "could not stop/disable $name (continuing)"
    elif [ -n "$root" ] && command -v systemctl >/dev/null; then
      systemctl --root="$root" disable -- "$name" >/dev/null 2>&1 || true
    fi
    if [ -e "$root$path" ] || [ -L "$root$path" ]; then
      rm -f -- "$root$path"
      units_removed=1
      say "removed $path"
    fi
  done
  for e in "${entries[@]}"; do
    read -r kind path extra <<<"$e"
    case "$kind" in unit | dir | tree | digest) continue ;; esac
    if ! removable "$kind" "$path"; then
      warn "manifest entry '$e' is not a path this script installs; left alone"
      continue
    fi
    case "$kind" in
      link)
        if [ -L "$root$path" ] && [ "$(readlink -- "$root$path")" = "$extra" ]; then
          rm -f -- "$root$path"
          say "removed $path"
        elif [ -e "$root$path" ] || [ -L "$root$path" ]; then
          say "kept $path: it no longer points at $extra"
        fi
        ;;
      config)
        if [ -f "$root$path" ] && [ ! -L "$root$path" ] && [ "$(sha256 "$root$path")" = "$extra" ]; then
          rm -f -- "$root$path"
          say "removed $path (still the installed default)"
        elif [ -e "$root$path" ]; then
          say "kept $path: you changed it"
        fi
        ;;
    esac
  done
  for e in "${entries[@]}"; do
    read -r kind path _ <<<"$e"
    [ "$kind" = dir ] && removable dir "$path" || continue
    if rmdir -- "$root$path" 2>/dev/null; then
      say "removed $path"
    elif [ -d "$root$path" ]; then
      say "kept $path: it holds files this script did not install ($(ls -A -- "$root$path" | tr '\n' ' '))"
    fi
  done
  for e in "${entries[@]}"; do
    read -r kind path _ <<<"$e"
    [ "$kind" = tree ] && removable tree "$path" || continue
    rm -rf -- "$root$path"
    say "removed $path"
  done
  [ "$units_removed" = 1 ] && daemon_reload
  say "uninstalled. Certificates, keys and state were left in place: ${PROTECTED[*]}"
  exit 0
fi

# --- install ------------------------------------------------------------------------------------
# Nothing is written unless it differs from what is installed: a second run changes nothing.
[ -f "$src_dir/package.json" ] && [ -x "$src_dir/bin/nodecert" ] && [ -f "$src_dir/src/cli/main.ts" ] ||
  die "$src_dir does not look like the nodecert source tree"
[ -d "$src_dir/node_modules" ] || die "node_modules is missing in $src_dir: run 'npm ci' first (it also builds dist/)"
# bin/nodecert refuses a missing dist/ or one older than src/, and says how to rebuild.
built=$("$src_dir/bin/nodecert" --version 2>&1) || die "the program in $src_dir is not built: $built"
for u in "${UNITS[@]}"; do [ -f "$src_dir/systemd/$u" ] || die "missing unit file $src_dir/systemd/$u"; done
command -v node >/dev/null || die "node is not on PATH; nodecert needs Node.js >= 20.19"
node_path=$(readlink -f -- "$(command -v node)")
case "$node_path" in
  /home/* | /root/*) warn "node is $node_path: the services cannot run it (ProtectHome=yes, and it is not on systemd's PATH); install Node.js system-wide" ;;
esac

if [ -d "$P" ] && [ ! -f "$MANIFEST" ] && [ -n "$(ls -A -- "$P")" ]; then
  die "$P exists and was not installed by this script (no $MANIFEST); move it away or choose another --prefix"
fi

# What an earlier run created (agent.yaml, /etc/nodecert) is known only from its manifest.
declare -a carried=()
recorded_digest=""
if [ -f "$MANIFEST" ]; then
  mapfile -t carried < <(grep -E '^(config|dir) ' "$MANIFEST" || true)
  recorded_digest=$(sed -n 's/^digest //p' "$MANIFEST" | head -n 1)
fi

# 1. The program tree. The manifest records "digest <source> <installed tree>": when the source
#    is unchanged and the installed tree intact, nothing is staged or written.
source_digest=$(digest "$src_dir" "${PAYLOAD[@]}")
tree_now=""
if [ -d "$P" ]; then tree_now=$(digest "$P" "${PAYLOAD[@]}"); fi
parent=$(dirname -- "$P")
stage=""
upgraded=0
cleanup() {
  if [ -n "$stage" ]; then rm -rf -- "$stage"; fi
}
trap cleanup EXIT
if [ -n "$tree_now" ] && [ "$recorded_digest" = "$source_digest $tree_now" ]; then
  say "$prefix is up to date"
  tree_digest=$tree_now
else
  mkdir -p -- "$parent"
  stage=$(mktemp -d "$parent/.nodecert-stage.XXXXXX")
  cp -p -- "$src_dir/package.json" "$src_dir/package-lock.json" "$stage/"
  cp -a -- "$src_dir/bin" "$src_dir/dist" "$stage/"
  # "node_modules/." so that a symlinked node_modules is copied, never linked to as a whole.
  mkdir -- "$stage/node_modules"
  link_modules=0
  if [ -n "$root" ] && [ "$(stat -L -c %d -- "$src_dir/node_modules")" = "$(stat -c %d -- "$stage")" ]; then
    link_modules=1
    cp -al -- "$src_dir/node_modules/." "$stage/node_modules/"
  else
    cp -a -- "$src_dir/node_modules/." "$stage/node_modules/"
  fi
  # Drop devDependencies (the lockfile marks them "dev": true), type declarations (@types/*: no
  # code runs from them, though a runtime package such as protobufjs may list one), their dangling
  # .bin links and npm's hidden lockfile, which describes the tree before pruning. Only unlinks:
  # safe with hard links.
  lock=$src_dir/node_modules/.package-lock.json
  [ -f "$lock" ] || lock=$src_dir/package-lock.json
  dev_list=$(node -e '
    const lock = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    if (!lock.packages) process.exit(3);
    for (const [k, v] of Object.entries(lock.packages)) if (k.startsWith("node_modules/") && (v.dev || /(^|\/)node_modules\/@types\/[^/]+$/.test(k))) console.log(k);
  ' "$lock") || die "cannot read the package list from $lock (lockfileVersion 2 or later needed)"
  mapfile -t dev_paths <<<"$dev_list"
  for d in "${dev_paths[@]}"; do
    case "$d" in node_modules/*) ;; *) continue ;; esac
    case "/$d/" in */../* | */./*) continue ;; esac
    rm -rf -- "${stage:?}/$d"
  done
  find "$stage/node_modules" -path '*/.bin/*' -xtype l -delete
  rm -f -- "$stage/node_modules/.package-lock.json"
  # What ships runs on plain node: no TypeScript loader may be left in the tree.
  for d in tsx typescript esbuild; do
    [ ! -e "$stage/node_modules/$d" ] || die "node_modules/$d is still in the staged tree; it must be a devDependency"
  done
  # Linked files are the source tree's own inodes: never chmod or chown them.
  if [ "$link_modules" = 0 ]; then
    chmod -R u+rwX,go+rX,go-w -- "$stage"
    if [ "$(id -u)" -eq 0 ]; then chown -R 0:0 -- "$stage"; fi
  else
    chmod 0755 -- "$stage"
  fi
  tree_digest=$(digest "$stage" "${PAYLOAD[@]}")
  if [ "$tree_digest" = "$tree_now" ]; then
    say "$prefix is up to date"
  else
    version=$("$stage/bin/nodecert" --version 2>&1) || die "the staged program does not run ($stage/bin/nodecert --version): $version"
    how=""
    if [ "$link_modules" = 1 ]; then how=" (node_modules hard-linked from $src_dir)"; fi
    if [ -d "$P" ]; then
      # The old manifest goes along until the new one is written.
      if [ -f "$MANIFEST" ]; then cp -p -- "$MANIFEST" "$stage/.install-manifest"; fi
      old=$parent/.nodecert-old.$$
      mv -T -- "$P" "$old"
      mv -T -- "$stage" "$P"
      stage=$old # removed on exit
      upgraded=1
      say "upgraded $prefix to nodecert $version$how"
    else
      mv -T -- "$stage" "$P"
      stage=""
      say "installed nodecert $version in $prefix$how"
    fi
  fi
fi

# 2. /usr/bin/nodecert
target=$prefix/bin/nodecert
if [ -L "$root$LINK" ] && [ "$(readlink -- "$root$LINK")" = "$target" ]; then
  :
elif [ -L "$root$LINK" ] && ! grep -qx "link $LINK $(readlink -- "$root$LINK")" "$MANIFEST" 2>/dev/null; then
  die "$LINK points at $(readlink -- "$root$LINK"), which this script did not install; remove it first"
elif [ -e "$root$LINK" ] && [ ! -L "$root$LINK" ]; then
  die "$LINK exists and is not a symlink; remove it first"
else
  mkdir -p -- "$root$(dirname -- "$LINK")"
  ln -sfn -- "$target" "$root$LINK"
  say "linked $LINK -> $target"
fi

# 3. /etc/nodecert (0700) and a default agent.yaml, only if there is none.
if [ -e "$root$CONF_DIR" ] && [ ! -d "$root$CONF_DIR" ]; then die "$CONF_DIR exists and is not a directory"; fi
if [ ! -d "$root$CONF_DIR" ]; then
  mkdir -p -m 0700 -- "$root$CONF_DIR"
  chmod 0700 -- "$root$CONF_DIR"
  carried+=("dir $CONF_DIR")
  say "created $CONF_DIR (0700)"
elif [ "$(stat -c %a -- "$root$CONF_DIR")" != 700 ]; then
  chmod 0700 -- "$root$CONF_DIR"
  say "set $CONF_DIR to 0700 (it holds the bootstrap token and the server's key-encryption key)"
fi
default_agent_yaml() {
  cat <<'YAML'
# nodecert agent configuration. install.sh created this file and never overwrites it.
# To join this node, set the three values below, put the bootstrap token from
# `nodecert token create` in tokenFile (mode 0600), then:  systemctl enable --now nodecert-agent
# (or join once by hand: nodecert join --server URL --token T --ca-cert-hash sha256:H).
#
# server: https://cp.example.com:9443
# caCertHash: sha256:<pin printed by 'nodecert server init'>
# tokenFile: /etc/nodecert/token
#
# Optional, defaults shown:
# nodeName: <lowercased hostname>
# keyAlgorithm: ECDSA-P256
# healthListen: 127.0.0.1:10258
# schedule: "* * * * *"
# hooks:
#   - { type: systemd, unit: kubelet }
YAML
}
if [ ! -e "$root$AGENT_YAML" ] && [ ! -L "$root$AGENT_YAML" ]; then
  tmp=$(mktemp "$root$CONF_DIR/.agent.yaml.XXXXXX")
  default_agent_yaml >"$tmp"
  chmod 0600 -- "$tmp"
  mv -T -- "$tmp" "$root$AGENT_YAML"
  carried+=("config $AGENT_YAML $(sha256 "$root$AGENT_YAML")")
  say "created $AGENT_YAML (defaults; edit it to join this node)"
else
  say "kept the existing $AGENT_YAML"
fi

# 4. Units (their Exec*= paths follow --prefix).
render_unit() {
  if [ "$prefix" = "$DEFAULT_PREFIX" ]; then
    cat -- "$src_dir/systemd/$1"
  else
    sed "s#^\(Exec[A-Za-z]*=[-+@!:]*\)$DEFAULT_PREFIX/#\1$prefix/#" -- "$src_dir/systemd/$1"
  fi
}
units_changed=0
for u in "${UNITS[@]}"; do
  dest=$root$UNIT_DIR/$u
  if [ -f "$dest" ] && [ ! -L "$dest" ] && cmp -s -- <(render_unit "$u") "$dest"; then continue; fi
  mkdir -p -- "$root$UNIT_DIR"
  tmp=$(mktemp "$root$UNIT_DIR/.$u.XXXXXX")
  render_unit "$u" >"$tmp"
  chmod 0644 -- "$tmp"
  mv -T -- "$tmp" "$dest"
  units_changed=1
  say "installed $UNIT_DIR/$u"
done
if [ "$units_changed" = 1 ]; then
  daemon_reload
else
  say "units are up to date"
fi
# A running agent imports parts of the program when it first needs them (key generation at the
# next renewal, metrics at the first scrape) from the tree just replaced: restart what runs.
if [ "$upgraded" = 1 ] && systemd_running; then
  for u in "${UNITS[@]}"; do
    if systemctl is-active --quiet -- "$u"; then
      systemctl try-restart -- "$u" && say "restarted $u on the new program" || warn "could not restart $u; restart it yourself"
    fi
  done
fi

# 5. The manifest: exactly what --uninstall removes.
manifest() {
  echo "# nodecert install manifest (scripts/install.sh). --uninstall removes these and nothing else."
  echo "tree $prefix"
  echo "link $LINK $target"
  for u in "${UNITS[@]}"; do echo "unit $UNIT_DIR/$u"; done
  if [ "${#carried[@]}" -gt 0 ]; then printf '%s\n' "${carried[@]}" | LC_ALL=C sort -u; fi
  echo "digest $source_digest $tree_digest"
}
if ! { [ -f "$MANIFEST" ] && cmp -s -- <(manifest) "$MANIFEST"; }; then
  tmp=$(mktemp "$P/.install-manifest.XXXXXX")
  manifest >"$tmp"
  chmod 0644 -- "$tmp"
  mv -T -- "$tmp" "$MANIFEST"
fi

say "done. Next: edit $AGENT_YAML, then 'systemctl enable --now nodecert-agent' (control plane: see the comments in $UNIT_DIR/nodecert-server.service)"
