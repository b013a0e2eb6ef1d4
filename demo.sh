#!/usr/bin/env bash
# The demo: a local Raft Vault (the cached test build), `aion-exec dev
# bootstrap`, a throwaway PostgreSQL, and aion-exec around the example Node
# service; then a password rotation (SIGHUP, no restart) and a move to
# another port (one restart). No Docker. Everything lives in .demo/ and is
# stopped on exit.
set -euo pipefail
cd "$(dirname "$0")"
root=$PWD
demo=$root/.demo
rm -rf "$demo"
mkdir -p "$demo/bin" "$demo/vault/raft"
pids=()
pgdir=""
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	# runuser does not pass a signal on to postgres: stop the cluster by
	# its own means, then remove it.
	if [ -n "$pgdir" ] && [ -f "$pgdir/data/postmaster.pid" ]; then
		run_pg "$pgbin/pg_ctl" -D "$pgdir/data" -m fast -w stop >/dev/null 2>&1 || true
	fi
	wait 2>/dev/null || true
	[ -n "$pgdir" ] && rm -rf "$pgdir"
	return 0
}
trap cleanup EXIT
run_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
free_port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

say "building aion-exec and the test Vault (the first Vault build takes a few minutes, then it is cached)"
vault=$(integration/build-vault.sh)
./build.sh "$demo/bin/aion-exec"
export PATH="$demo/bin:$PATH"
(cd examples/node-service && npm ci --no-audit --no-fund --silent)

say "starting Vault (Raft storage) on 127.0.0.1"
vport=$(free_port); cport=$(free_port)
cat >"$demo/vault/vault.hcl" <<HCL
storage "raft" {
  path    = "$demo/vault/raft"
  node_id = "demo"
}
listener "tcp" {
  address     = "127.0.0.1:$vport"
  tls_disable = true
}
api_addr      = "http://127.0.0.1:$vport"
cluster_addr  = "http://127.0.0.1:$cport"
disable_mlock = true
HCL
"$vault" server -config="$demo/vault/vault.hcl" >"$demo/vault.log" 2>&1 &
pids+=($!)
export AION_VAULT_ADDR=http://127.0.0.1:$vport

say "aion-exec dev bootstrap"
(cd "$demo" && aion-exec dev bootstrap)
set -a; . "$demo/.env.vault.dev"; set +a
export VAULT_ADDR=$AION_VAULT_ADDR
root_token=$(node -e 'console.log(require(process.argv[1]).root_token)' "$demo/.vault/dev-unseal.json")
kv() { VAULT_TOKEN=$root_token "$vault" kv "$@" >/dev/null; }

say "starting PostgreSQL for the example service"
pgbin=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | tail -1)")
pgport=$(free_port)
pgdir=$(mktemp -d /tmp/aion-demo-pg.XXXXXX)
[ "$(id -u)" = 0 ] && chown postgres "$pgdir"
run_pg "$pgbin/initdb" -D "$pgdir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 >/dev/null
run_pg "$pgbin/postgres" -D "$pgdir/data" -p "$pgport" -k "$pgdir" -c listen_addresses=127.0.0.1 >"$demo/postgres.log" 2>&1 &
pids+=($!)
psql_() { run_pg psql -h "$pgdir" -p "$pgport" -U postgres -At -v ON_ERROR_STOP=1 -c "$1"; }
for _ in $(seq 100); do psql_ 'select 1' >/dev/null 2>&1 && break; sleep 0.1; done
password=$(VAULT_TOKEN=$root_token "$vault" kv get -field=password secret/aionos/dev/db-main)
psql_ "create role aionos login password '$password'" >/dev/null
psql_ "create database aionos owner aionos" >/dev/null
kv patch secret/aionos/dev/db-main port="$pgport"

say "aion-exec check (key names, never values)"
aion-exec check

say "aion-exec env (what the service gets; dev secrets, so shown here)"
AION_TEMPLATES_DIR=$root/examples/node-service/templates AION_RENDER_DIR=$demo/render aion-exec env | sed -n '1,12p'

say "aion-exec -- node examples/node-service/server.js"
port=$(free_port)
export AION_TEMPLATES_DIR=$root/examples/node-service/templates AION_RENDER_DIR=$demo/render AION_POLL_INTERVAL=1s PORT=$port
aion-exec -- node examples/node-service/server.js >"$demo/service.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q ready "$demo/service.log" && break; sleep 0.1; done
echo "GET /db -> $(curl -s "http://127.0.0.1:$port/db")"

say "rotating the database password in PostgreSQL and Vault: expect one SIGHUP, same pid"
new="rotated-$RANDOM-$RANDOM"
psql_ "alter role aionos password '$new'" >/dev/null
kv patch secret/aionos/dev/db-main password="$new"
for _ in $(seq 100); do grep -q "reloaded 1" "$demo/service.log" && break; sleep 0.1; done
echo "GET /db -> $(curl -s "http://127.0.0.1:$port/db")"

say "moving the database (a host field): expect one restart"
psql_ "select pg_terminate_backend(pid) from pg_stat_activity where usename='aionos'" >/dev/null
kv patch secret/aionos/dev/db-main port="$pgport" host=localhost
for _ in $(seq 150); do [ "$(grep -c 'ready pid' "$demo/service.log")" -ge 2 ] && break; sleep 0.1; done
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/db" >/dev/null && break; sleep 0.1; done
echo "GET /db -> $(curl -s "http://127.0.0.1:$port/db")"

say "what aion-exec and the service logged"
cat "$demo/service.log"
