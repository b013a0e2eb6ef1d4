#!/usr/bin/env bash
# The fleet benchmark: BENCH_FLEET aion-exec instances (each with its own
# token and a benchchild) against one real Vault server on loopback: start
# spread, a steady window (Vault requests/s from the file audit device, Vault
# CPU, per-instance and total RSS), rotations (exactly one SIGHUP per child
# within one interval), a Vault outage (the requests of the first second after
# recovery against the steady rate), then one more rotation.
#
#   flock /tmp/aion-heavy.lock bench/fleet.sh       the full run (about 7 minutes at 500)
#   BENCH_FLEET=20 nice bench/fleet.sh              a small development run
#
# Settings (environment):
#   BENCH_FLEET            instances (500)
#   BENCH_FLEET_SECRETS    KV secrets per instance, 5 fields each (5)
#   BENCH_FLEET_INTERVAL   AION_POLL_INTERVAL (10s)
#   BENCH_FLEET_OUTAGE     how long Vault stays down (30s)
#   BENCH_FLEET_ROTATIONS  rotations before the outage; one more follows it (3)
#   BENCH_FLEET_STEADY     the steady window (60s)
#   BENCH_FLEET_MARGIN     allowed beyond one interval for write → SIGHUP (1s)
#   BENCH_FLEET_INOTIFY    raise (default): if fs.inotify.max_user_instances
#                          is too small for the fleet (every aion-exec watches
#                          AION_TEMPLATES_DIR, one inotify instance each, counted
#                          per user), raise it for the run and put it back after;
#                          keep: leave it (instances beyond it fail: measured)
#   BENCH_OUT              where fleet.json, fleet.md and fleet.png go (bench/results)
#   BENCH_KEEP             1: keep the scratch directory (logs, audit log)
#
# Vault is a real server (one Raft node, so it survives the stop and start of
# the outage), initialised with one key share and unsealed, over plain HTTP
# on 127.0.0.1. Everything lives in one mktemp directory; nothing outlives
# the script.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
. "$here/lib.sh"
out=${BENCH_OUT:-$here/results}
n=${BENCH_FLEET:-500}
secrets=${BENCH_FLEET_SECRETS:-5}
interval=${BENCH_FLEET_INTERVAL:-10s}
outage=${BENCH_FLEET_OUTAGE:-30s}
rotations=${BENCH_FLEET_ROTATIONS:-3}
steady=${BENCH_FLEET_STEADY:-60s}
margin=${BENCH_FLEET_MARGIN:-1s}
inotify=${BENCH_FLEET_INOTIFY:-raise}

log() { echo "fleet: $*" >&2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/aion-fleet.XXXXXX")
fleet_pid=""
inotify_old=""
inotify_new=""

# sweep kills whatever still runs from the scratch directory: an aion-exec
# or benchchild built into $work/bin, a Vault whose config is in $work.
# Matched by exact path, never by a broad name.
sweep() {
	local p exe cmd
	for p in /proc/[0-9]*; do
		exe=$(readlink "$p/exe" 2>/dev/null) || continue
		cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
		case "$exe $cmd" in
		"$work/bin/"* | *"-config=$work/vault.hcl"*) kill -KILL "${p#/proc/}" 2>/dev/null || true ;;
		esac
	done
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop "$fleet_pid" 30 TERM
	sweep
	if [ -n "$inotify_old" ] && [ "$(cat /proc/sys/fs/inotify/max_user_instances)" = "$inotify_new" ]; then
		echo "$inotify_old" >/proc/sys/fs/inotify/max_user_instances 2>/dev/null &&
			log "fs.inotify.max_user_instances back to $inotify_old"
	fi
	if [ -n "${BENCH_KEEP:-}" ]; then
		log "scratch kept in $work"
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# File descriptors: Vault holds a connection per instance (more while they
# reconnect after the outage), each instance a few.
need_fds=$((4 * n + 4096))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need_fds" ]; then
	hard=$(ulimit -Hn)
	if [ "$hard" = unlimited ] || [ "$hard" -ge "$need_fds" ]; then ulimit -n "$need_fds"; else ulimit -n "$hard"; fi
	log "ulimit -n raised to $(ulimit -n)"
fi
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge "$((2 * n + 256))" ] ||
	log "WARNING: ulimit -n is $(ulimit -n), low for $n instances"
cur=$(cat /proc/sys/fs/inotify/max_user_instances)
need_in=$((n + 512))
if [ "$cur" -lt "$need_in" ]; then
	if [ "$inotify" = raise ]; then
		if echo "$need_in" >/proc/sys/fs/inotify/max_user_instances 2>/dev/null; then
			inotify_old=$cur inotify_new=$need_in
			log "fs.inotify.max_user_instances raised from $cur to $need_in for the run (one per aion-exec; put back on exit)"
		else
			log "WARNING: fs.inotify.max_user_instances is $cur and cannot be raised: instances beyond it will fail"
		fi
	else
		log "fs.inotify.max_user_instances is $cur, kept (BENCH_FLEET_INOTIFY=keep)"
	fi
fi

mkdir -p "$work/bin"
log "building aion-exec with ./build.sh"
"$root/build.sh" "$work/bin/aion-exec"
log "building benchchild and aionfleet"
build_tools aionfleet
vault=$("$root/integration/build-vault.sh")

"$work/bin/aionfleet" -vault "$vault" -aion "$work/bin/aion-exec" -child "$work/bin/benchchild" \
	-work "$work" -out "$out" -n "$n" -secrets "$secrets" -interval "$interval" -outage "$outage" \
	-rotations "$rotations" -steady "$steady" -margin "$margin" &
fleet_pid=$!
rc=0
wait "$fleet_pid" || rc=$?
fleet_pid=""
exit "$rc"
