#!/usr/bin/env bash
# The lease benchmark: Vault requests for one dynamic database secret at a
# 1 h TTL / 24 h max TTL, compressed in time, rendered into a child's
# environment by aion-exec, consul-template and Vault Agent at once, on one
# Vault dev server (its own PostgreSQL database plugin, -dev-plugin-dir) and
# one real PostgreSQL, both on loopback.
#
#   bench/leases.sh                          about 8 minutes
#   BENCH_LEASE_DAYS=0.3 bench/leases.sh     a smoke run of about 2 minutes
#
# Settings (environment):
#   BENCH_LEASE_SCALE  time compression (240: 1 h of lease time is 15 s, 24 h is 360 s)
#   BENCH_LEASE_DAYS   simulated days to run (1.25: the first day, its max-TTL
#                      rotation, and a quarter of the next day)
#   BENCH_OUT          where leases.json and leases.md go (bench/results)
#   BENCH_KEEP         1: keep the scratch directory (tool configs and logs,
#                      the raw audit log) for a post-mortem
#
# The tools' tokens have a 24 h TTL in real time (not compressed): none of
# them expires or needs renewing during a run, so token renewals and the
# lease re-reads a new token would force (docs/leases.md) stay out of the
# numbers; whatever token requests a tool makes on its own are counted.
#
# Writes $BENCH_OUT/leases.json (every number, per tool) and leases.md (a
# section for BENCHMARKS.md); `go run ./cmd/aionleases render leases.json DIR`
# (in bench/) writes leases.md again from the JSON of a run.
#
# Builds aion-exec from this checkout; Vault and its database plugin
# (integration/build-vault.sh) and consul-template
# (bench/build-consul-template.sh) are built once and cached outside the repo.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
. "$here/lib.sh"
out=${BENCH_OUT:-$here/results}
scale=${BENCH_LEASE_SCALE:-240}
days=${BENCH_LEASE_DAYS:-1.25}

work=$(mktemp -d "${TMPDIR:-/tmp}/aion-leases.XXXXXX")
# PostgreSQL's own directory: it runs as the postgres user when we are
# root, and the scratch directory is root's alone.
pg=$(mktemp -d "${TMPDIR:-/tmp}/aion-leases-pg.XXXXXX")
vault_pid=""
pg_pid=""
bench_pid=""
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop "$bench_pid" 40 TERM
	# The tools' process groups, which aionleases records as it starts
	# them: gone already unless it was killed before it could stop them.
	if [ -f "$work/pgids" ]; then
		while read -r g; do [ -n "$g" ] && kill -KILL -- "-$g" 2>/dev/null || true; done <"$work/pgids"
	fi
	# Vault's database plugin runs as Vault's child; a Vault that does not
	# stop it on its way out leaves it to init, so its pids are taken first.
	plugin_pids=""
	[ -n "$vault_pid" ] && plugin_pids=$(pgrep -P "$vault_pid" 2>/dev/null || true)
	stop "$vault_pid" 10 TERM
	for p in $plugin_pids; do kill -KILL "$p" 2>/dev/null || true; done
	# SIGINT is PostgreSQL's fast shutdown; SIGKILL of the postmaster would
	# leave its backends, so they are looked for by the data directory's
	# lock file afterwards.
	stop "$pg_pid" 20 INT
	if [ -f "$pg/data/postmaster.pid" ]; then
		left=$(head -1 "$pg/data/postmaster.pid")
		[ -n "$left" ] && kill -KILL "$left" 2>/dev/null || true
	fi
	if [ -n "${BENCH_KEEP:-}" ]; then
		echo "leases: scratch kept in $work and $pg" >&2
	else
		rm -rf "$work" "$pg"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "leases: $*" >&2; }

mkdir -p "$work/bin"
log "building aion-exec, the measuring tool and the child"
"$root/build.sh" "$work/bin/aion-exec"
build_tools aionleases
vault=$("$root/integration/build-vault.sh")
plugins="$(dirname "$vault")/plugins"
[ -x "$plugins/postgresql-database-plugin" ] || { log "no database plugin in $plugins"; exit 1; }
{ read -r ct; read -r _; } < <("$here/build-consul-template.sh")

freeport() { "$work/bin/aionleases" freeport; }

# PostgreSQL, as the integration harness starts it: Debian's server
# binaries, a cluster of its own, scram over TCP, trust on a private socket;
# as the postgres user when we are root (initdb refuses root).
pgbin=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1)")
[ -x "$pgbin/initdb" ] || { log "PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install postgresql)"; exit 1; }
as_pg=()
if [ "$(id -u)" = 0 ]; then
	chown postgres: "$pg"
	as_pg=(setpriv --reuid=postgres --regid=postgres --init-groups --)
fi
pg_port=$(freeport)
"${as_pg[@]}" env -i PATH=/usr/bin:/bin LC_ALL=C "$pgbin/initdb" -D "$pg/data" -U postgres \
	--auth-local=trust --auth-host=scram-sha-256 -E UTF8 >"$pg/initdb.log" 2>&1 ||
	{ log "initdb failed:"; tail -20 "$pg/initdb.log" >&2; exit 1; }
"${as_pg[@]}" env -i PATH=/usr/bin:/bin LC_ALL=C "$pgbin/postgres" -D "$pg/data" -p "$pg_port" -k "$pg" \
	-c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50 >"$pg/postgres.log" 2>&1 &
pg_pid=$!
psql_su() { "${as_pg[@]}" env -i PATH=/usr/bin:/bin LC_ALL=C "$pgbin/psql" -h "$pg" -p "$pg_port" -U postgres -d postgres -v ON_ERROR_STOP=1 -Atqc "$1"; }
up=""
for _ in $(seq 1 150); do
	if psql_su 'select 1' >/dev/null 2>&1; then up=1; break; fi
	kill -0 "$pg_pid" 2>/dev/null || break
	sleep 0.2
done
[ -n "$up" ] || { log "PostgreSQL did not start:"; tail -20 "$pg/postgres.log" >&2; exit 1; }
pg_password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
psql_su "create role \"vault-admin\" login superuser password '$pg_password'"
pg_version=$("$pgbin/postgres" --version | awk '{print $3}')
log "PostgreSQL $pg_version on 127.0.0.1:$pg_port"

port=$(freeport)
export VAULT_ADDR="http://127.0.0.1:$port"
start_dev_vault "$vault" "$port" -dev-plugin-dir="$plugins"
vault_version=$("$vault" version | head -1 | awk '{print $2}' | tr -d ,)
log "Vault $vault_version on $VAULT_ADDR"

aion_version="$(git -C "$root" log -1 --format=%h -- . ":!bench" 2>/dev/null || echo unknown)"
git -C "$root" diff --quiet HEAD -- . ':!bench' 2>/dev/null || aion_version="$aion_version+dirty"
ct_version=$("$ct" -version 2>&1 | head -1 | awk '{print $2}')
"$work/bin/aionleases" \
	-vault-addr "$VAULT_ADDR" -root-token root \
	-aion "$work/bin/aion-exec" -ct "$ct" -agent "$vault" -child "$work/bin/benchchild" \
	-work "$work" -out "$out" -scale "$scale" -days "$days" \
	-pg-port "$pg_port" -pg-user vault-admin -pg-password "$pg_password" \
	-versions "aion-exec=$aion_version;consul-template=$ct_version;Vault and Vault Agent=$vault_version;PostgreSQL=$pg_version" &
bench_pid=$!
rc=0
wait "$bench_pid" || rc=$?
bench_pid=""
left=$(psql_su "select count(*) from pg_roles where rolname like 'v-%'" 2>/dev/null || echo "?")
log "database users left in PostgreSQL after the tools stopped: $left (the peers leave theirs to their TTL)"
exit "$rc"
