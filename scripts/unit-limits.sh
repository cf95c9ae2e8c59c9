#!/usr/bin/env bash
# What open-file limit do the shipped units really give nodecert, under their SystemCallFilter?
#
# No systemd runs as PID 1 here, so this starts a real one: /lib/systemd/systemd as PID 1 of
# private PID, mount and cgroup namespaces (unshare), with the repository's unit file as a runtime
# unit and a drop-in that only points it at this checkout and a throw-away state directory
# (ExecStart=, no LoadCredential=, DefaultDependencies=no so nothing but the unit starts). Every
# sandbox setting of the unit (LimitNOFILE=, SystemCallFilter=, NoNewPrivileges=, capabilities)
# is applied by systemd itself. It then reads /proc/<pid>/limits and the seccomp mode of the node
# process the unit started. Cases:
#   server            the unit as shipped
#   server-soft       + LimitNOFILE=1024:<hard>: does Node raise its soft limit under the filter?
#   server-soft-deny  + SystemCallFilter=~prlimit64 setrlimit: the control (the raise must fail)
#   agent             the agent unit as shipped (paths under the private /var/lib)
# Prints one JSON object per case. Needs root (mounts, namespaces). Nothing outside the private
# mount namespace is written except a temporary directory, removed at the end.
#
#   sudo bash scripts/unit-limits.sh [case ...]
set -Eeuo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
systemd=/lib/systemd/systemd
[ -x "$systemd" ] || { echo "no $systemd" >&2; exit 2; }
command -v unshare >/dev/null || { echo "no unshare (util-linux)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "run as root: it mounts and creates namespaces" >&2; exit 2; }
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(server server-soft server-soft-deny agent)

work=$(mktemp -d /tmp/nodecert-unit-limits-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
# Say which command failed: set -e alone exits 1 without a word.
trap 'echo "unit-limits.sh: line $LINENO exited $?" >&2' ERR

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$repo/bin/nodecert" server init --dir "$work/server" --listen "127.0.0.1:$port" --san 127.0.0.1 >"$work/init.log" 2>&1 || { cat "$work/init.log" >&2; exit 1; }
hard=$(ulimit -Hn)

# The script PID 1 runs: private /run, /tmp and /var/lib, no enabled units from /etc, then systemd.
cat > "$work/inner.sh" <<'EOF'
#!/bin/sh
set -eu
unit=$1; dropin=$2; state=$3; repo=$4
mount -t tmpfs tmpfs /run
# The units have PrivateTmp= and ProtectHome=: a checkout under /tmp or /root (a CI clone) is not
# visible to the service. The checkout is bound at a path the unit can read.
mkdir -p /run/nodecert-repo
mount --bind "$repo" /run/nodecert-repo
name=$(basename "$unit")
mkdir -p "/run/systemd/system/$name.d" /run/empty
cp "$unit" "/run/systemd/system/$name"
cp "$dropin" "/run/systemd/system/$name.d/zz-proof.conf"
mount --bind /run/empty /etc/systemd/system
mount -t tmpfs tmpfs /var/lib
mkdir -p /var/lib/nodecert-server /var/lib/agentroot
mount --bind "$state" /var/lib/nodecert-server
cp "$state/agent.yaml" /var/lib/agentroot/agent.yaml
mount -t tmpfs tmpfs /tmp
exec env container=nodecert-unit-limits /lib/systemd/systemd --system --unit="$name" --log-target=console
EOF
chmod +x "$work/inner.sh"

printf 'root: /var/lib/agentroot\nserver: https://127.0.0.1:%s\nhealthListen: 127.0.0.1:0\nhooks: []\n' "$port" > "$work/agent.yaml"

run_case() {
  local c=$1 unit dropin="$work/$1.conf" match
  case $c in
    server*) unit=$repo/systemd/nodecert-server.service; match="server run --dir /var/lib/nodecert-server" ;;
    agent) unit=$repo/systemd/nodecert-agent.service; match="agent --config /var/lib/agentroot/agent.yaml" ;;
    *) echo "unknown case $c" >&2; return 1 ;;
  esac
  cp "$work/agent.yaml" "$work/server/agent.yaml"
  {
    # No journald here: the service's output goes to a file in the private /run.
    printf '[Unit]\nDefaultDependencies=no\n[Service]\nStandardOutput=file:/run/nodecert.out\nStandardError=file:/run/nodecert.out\nExecStart=\n'
    case $c in
      agent) printf 'ExecStart=/run/nodecert-repo/bin/nodecert agent --config /var/lib/agentroot/agent.yaml\nExecStartPre=\nReadWritePaths=\nReadWritePaths=/var/lib/agentroot\n' ;;
      *) printf 'ExecStart=/run/nodecert-repo/bin/nodecert server run --dir /var/lib/nodecert-server\nLoadCredential=\n' ;;
    esac
    case $c in
      server-soft) printf 'LimitNOFILE=1024:%s\n' "$hard" ;;
      server-soft-deny) printf 'LimitNOFILE=1024:%s\nSystemCallFilter=~prlimit64 setrlimit\n' "$hard" ;;
    esac
  } > "$dropin"
  unshare --pid --fork --mount --mount-proc --cgroup "$work/inner.sh" "$unit" "$dropin" "$work/server" "$repo" > "$work/$c.log" 2>&1 &
  local launcher=$!
  local pid1="" node="" limits="" seccomp="" state="" health="" i start=$SECONDS
  # A wall-clock bound per case (not an iteration count: under load each check takes longer), so
  # four cases stay inside the test's timeout and a stuck case names itself on stderr.
  for i in $(seq 1 100000); do
    if [ $((SECONDS - start)) -ge "${CASE_SECONDS:-35}" ]; then
      echo "unit-limits.sh: case $c: gave up after $((SECONDS - start)) s (systemd pid '${pid1}', node pid '${node}', state '${state}'); its log:" >&2
      tail -n 20 "$work/$c.log" >&2 || true
      break
    fi
    if [ -z "$pid1" ]; then
      pid1=$(pgrep -P "$launcher" -x systemd || true)
      [ -z "$pid1" ] || pids+=("$pid1")
    fi
    [ -z "$pid1" ] || node=$(pgrep -f -- "$match" | while read -r p; do [ "$(readlink /proc/$p/ns/pid)" = "$(readlink /proc/$pid1/ns/pid)" ] && echo "$p"; done | head -1 || true)
    if [ -n "$node" ]; then
      # The node process has started Node.js (and run its startup) once it has its own threads.
      limits=$(awk '/^Max open files/ {print $4 " " $5}' "/proc/$node/limits" 2>/dev/null || true)
      seccomp=$(awk '/^Seccomp:/ {print $2}' "/proc/$node/status" 2>/dev/null || true)
      # Node raises its soft limit early; give it until its server or agent is up (it logs to the
      # journal it cannot reach here, so wait for the listening socket or the health port).
      if [ "$c" = agent ]; then grep -q '"agent started"' "/proc/$pid1/root/run/nodecert.out" 2>/dev/null && state=up; else
        # Not piped into grep -q: grep exiting at the match can SIGPIPE curl, and with pipefail the
        # check then fails although the server answered (the case waited out its whole minute).
        health=$(curl -sk --max-time 1 "https://127.0.0.1:$port/healthz" 2>/dev/null || true)
        [[ $health == *'"ok":true'* ]] && state=up
      fi
      # (A process that has just exited has no limits to read: the case then reports what it had.)
      if [ "$state" = up ]; then limits=$(awk '/^Max open files/ {print $4 " " $5}' "/proc/$node/limits" 2>/dev/null || echo "$limits"); break; fi
    fi
    sleep 0.1
  done
  printf '{"case":"%s","pid1":"%s","node":"%s","up":"%s","soft":"%s","hard":"%s","seccomp":"%s","callerHard":"%s"}\n' "$c" "$pid1" "$node" "$state" "${limits%% *}" "${limits##* }" "$seccomp" "$hard"
  # Killing PID 1 of the namespace ends everything in it. If systemd was never seen, kill whatever
  # unshare forked, and unshare itself: waiting on a launcher nothing killed would hang the run.
  if [ -n "$pid1" ]; then kill -9 "$pid1" 2>/dev/null || true; else pkill -9 -P "$launcher" 2>/dev/null || true; kill -9 "$launcher" 2>/dev/null || true; fi
  for i in $(seq 1 50); do kill -0 "$launcher" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$launcher" 2>/dev/null && { echo "unit-limits.sh: case $c: unshare still running 5 s after the kill; killing it" >&2; kill -9 "$launcher" 2>/dev/null || true; }
  wait "$launcher" 2>/dev/null || true
  echo "unit-limits.sh: case $c done in $((SECONDS - start)) s" >&2
}

for c in "${cases[@]}"; do
  run_case "$c"
done
