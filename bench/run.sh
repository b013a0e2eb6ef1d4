#!/usr/bin/env bash
# Measures aion-exec against Vault Agent's exec mode and consul-template's
# exec mode, side by side, on one Vault dev server on loopback.
#
#   bench/run.sh                 everything (about 8 minutes on 2 cores)
#   BENCH_QUICK=1 bench/run.sh   a smoke run: 5 and 100 secrets, few repetitions
#
# Settings (environment):
#   BENCH_SIZES           numbers of secrets (5,25,50,100)
#   BENCH_RUNS            launch runs per fast tool and size (20)
#   BENCH_AGENT_RUNS      launch runs of Vault Agent, which waits 2 s by design (5)
#   BENCH_TOOLS           floor,vault-floor,aion-exec,vault-agent,consul-template
#   BENCH_WRITES          KV writes timed for change propagation (8)
#   BENCH_SUPERVISE       how long all wrappers supervise at once, for RSS and
#                         steady-state requests (180s; the last 60s count)
#   BENCH_OUT             where results go (bench/results)
#   BENCH_QUIET_LOAD      first wait, at most 10 minutes, until the 1-minute load
#                         average is at most this; 0 does not wait (0)
#   BENCH_DEFAULT_POLICY  1: give the tools' token Vault's templated default
#                         policy too, which makes every Vault request slower
#   BENCH_KEEP            1: keep the scratch directory (configs, wrapper logs,
#                         the audit log) for a post-mortem
#
# Writes $BENCH_OUT/latest.json, latest.md and chart.png. Builds aion-exec
# from this checkout; Vault (integration/build-vault.sh) and consul-template
# (bench/build-consul-template.sh) are built from the Go module proxy once and
# cached outside the repo.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
. "$here/lib.sh"
out=${BENCH_OUT:-$here/results}
sizes=${BENCH_SIZES:-5,25,50,100}
runs=${BENCH_RUNS:-20}
agent_runs=${BENCH_AGENT_RUNS:-5}
writes=${BENCH_WRITES:-8}
tools=${BENCH_TOOLS:-floor,vault-floor,aion-exec,vault-agent,consul-template}
quiet=${BENCH_QUIET_LOAD:-0}
default_policy=false
[ -n "${BENCH_DEFAULT_POLICY:-}" ] && default_policy=true
supervise=${BENCH_SUPERVISE:-180s}
steady=60s
if [ -n "${BENCH_QUICK:-}" ]; then
	sizes=${BENCH_SIZES:-5,100}
	runs=${BENCH_RUNS:-5}
	agent_runs=${BENCH_AGENT_RUNS:-2}
	writes=${BENCH_WRITES:-3}
	supervise=${BENCH_SUPERVISE:-40s}
	steady=16s
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/aion-bench.XXXXXX")
vault_pid=""
bench_pid=""
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop "$bench_pid" 20 TERM
	stop "$vault_pid" 10 TERM
	if [ -n "${BENCH_KEEP:-}" ]; then
		echo "bench: scratch kept in $work" >&2
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "bench: $*" >&2; }

mkdir -p "$work/bin"
case ",$tools," in
*,aion-exec,*)
	log "building aion-exec (CGO_ENABLED=0, -trimpath, -ldflags \"-s -w\")"
	"$root/build.sh" "$work/bin/aion-exec"
	;;
esac
log "building the measuring tool and the child"
build_tools aionbench
vault=$("$root/integration/build-vault.sh")
{ read -r ct; read -r ct_full; } < <("$here/build-consul-template.sh")

port=$("$work/bin/aionbench" freeport)
export VAULT_ADDR="http://127.0.0.1:$port"
log "starting Vault $("$vault" version | head -1) on $VAULT_ADDR"
start_dev_vault "$vault" "$port"
# The file audit device logs every request Vault handles: the request counts.
VAULT_TOKEN=root HOME="$work" "$vault" audit enable file file_path="$work/audit.log" >/dev/null

"$work/bin/aionbench" \
	-vault-addr "$VAULT_ADDR" -root-token root -audit-log "$work/audit.log" \
	-aion "$work/bin/aion-exec" -agent "$vault" -ct "$ct" -ct-unstripped "$ct_full" \
	-child "$work/bin/benchchild" -work "$work/run" -out "$out" \
	-sizes "$sizes" -runs "$runs" -agent-runs "$agent_runs" -writes "$writes" \
	-tools "$tools" -interval 2s -supervise "$supervise" -steady "$steady" -quiet-load "$quiet" -default-policy="$default_policy" &
bench_pid=$!
rc=0
wait "$bench_pid" || rc=$?
bench_pid=""

if [ -f "$out/latest.json" ]; then
	log "drawing $out/chart.png"
	(cd "$here" && GOFLAGS="${GOFLAGS:-} -mod=mod" go run ./cmd/benchchart -in "$out/latest.json" -out "$out/chart.png")
fi
exit "$rc"
