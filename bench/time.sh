#!/usr/bin/env bash
# A whole-process timing that needs no harness: GNU time of
#   aion-exec -- /bin/true
#   consul-template -once -exec /bin/true
# on one Vault dev server holding the same secrets, the two interleaved run
# by run. Wall time is taken with bash's EPOCHREALTIME around each call (GNU
# time's own clock has 10 ms steps); GNU time gives the peak RSS and the CPU.
#
#   bench/time.sh                 5 and 100 secrets, 21 runs each
#   BENCH_TIME_SIZES=5,25 BENCH_TIME_RUNS=11 bench/time.sh
#
# Prints a Markdown table and writes it to $BENCH_OUT/time.md (bench/results).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
out=${BENCH_OUT:-$here/results}
sizes=${BENCH_TIME_SIZES:-5,100}
runs=${BENCH_TIME_RUNS:-21}
gnutime=/usr/bin/time
[ -x "$gnutime" ] || { echo "time.sh: $gnutime (GNU time) is needed: apt-get install time" >&2; exit 69; }

work=$(mktemp -d "${TMPDIR:-/tmp}/aion-time.XXXXXX")
vault_pid=""
cleanup() {
	if [ -n "$vault_pid" ]; then
		kill -TERM "$vault_pid" 2>/dev/null || true
		wait "$vault_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { echo "time: $*" >&2; }

"$root/build.sh" "$work/aion-exec"
vault=$("$root/integration/build-vault.sh")
ct=$("$here/build-consul-template.sh" | head -1)
port=$(cd "$here" && GOWORK=off GOFLAGS=-mod=mod go run ./cmd/aionbench freeport)

export VAULT_ADDR="http://127.0.0.1:$port" VAULT_TOKEN=root HOME="$work"
HOME="$work" "$vault" server -dev -dev-listen-address="127.0.0.1:$port" \
	-dev-root-token-id=root -dev-no-store-token >"$work/vault.log" 2>&1 &
vault_pid=$!
for _ in $(seq 1 150); do
	"$vault" status >/dev/null 2>&1 && break
	kill -0 "$vault_pid" 2>/dev/null || { tail -20 "$work/vault.log" >&2; exit 1; }
	sleep 0.2
done
"$vault" status >/dev/null || { log "Vault did not start"; exit 1; }

max=$(tr ',' '\n' <<<"$sizes" | sort -n | tail -1)
log "seeding $max secrets on $VAULT_ADDR"
"$vault" policy write bench - >/dev/null <<'EOF'
path "secret/data/bench/*" { capabilities = ["read"] }
path "auth/token/lookup-self" { capabilities = ["read"] }
path "auth/token/renew-self" { capabilities = ["update"] }
EOF
for i in $(seq -f %03g 1 "$max"); do
	"$vault" kv put -mount=secret "bench/s$i" f1="one-$i" f2="two-$i" f3="three-$i" f4="four-$i" f5="five-$i" >/dev/null
done
token=$("$vault" token create -policy=bench -no-default-policy -ttl=2h -field=token)

# setup N: aion-exec's environment and consul-template's config for N secrets.
setup() {
	local n=$1 d="$work/$1" i f
	mkdir -p "$d/templates"
	: >"$d/templates/bench.env.tmpl"
	: >"$d/ct.tmpl"
	aion_env=(PATH=/usr/bin:/bin AION_VAULT_ADDR="$VAULT_ADDR" AION_VAULT_TOKEN="$token" AION_TEMPLATES_DIR="$d/templates"
		AION_RENDER_DIR="$d/render" AION_LOG_LEVEL=warn)
	for i in $(seq -f %03g 1 "$n"); do
		aion_env+=("AION_S${i}_SECRET_PATH=bench/s$i")
		printf '{{ with secret "secret/data/bench/s%s" }}' "$i" >>"$d/ct.tmpl"
		for f in 1 2 3 4 5; do
			printf 'S%s_F%s={{ .s%s.f%s }}\n' "$i" "$f" "$i" "$f" >>"$d/templates/bench.env.tmpl"
			printf "export S%s_F%s='{{ .Data.data.f%s }}'\n" "$i" "$f" "$f" >>"$d/ct.tmpl"
		done
		printf '{{ end }}' >>"$d/ct.tmpl"
	done
	cat >"$d/ct.hcl" <<EOF
log_level = "warn"
vault {
  address = "$VAULT_ADDR"
  token = "$token"
  renew_token = false
}
template {
  source = "$d/ct.tmpl"
  destination = "$d/secrets.env"
  perms = 0600
  error_on_missing_key = true
}
EOF
}

# measure NAME N: one timed run, appended to $work/NAME-N.tsv as
# wall_ms rss_kib cpu_ms. The token reaches aion-exec in its environment,
# never in an argv.
measure() {
	local name=$1 n=$2 d="$work/$2"
	(
		unset VAULT_ADDR VAULT_TOKEN
		export HOME="$d"
		case $name in
		aion-exec) export "${aion_env[@]}"; cmd=("$work/aion-exec" -- /bin/true) ;;
		consul-template) cmd=("$ct" -config="$d/ct.hcl" -once -exec /bin/true) ;;
		esac
		t0=$EPOCHREALTIME
		"$gnutime" -v -o "$work/time.out" "${cmd[@]}" >/dev/null 2>"$work/err" || {
			log "$name with $n secrets failed:"; cat "$work/err" "$work/time.out" >&2; exit 1; }
		t1=$EPOCHREALTIME
		awk -v t0="$t0" -v t1="$t1" -F': ' '
			/Maximum resident set size/ { rss = $2 }
			/User time/ { u = $2 } /System time/ { s = $2 }
			END { printf "%.2f %d %.0f\n", (t1 - t0) * 1000, rss, (u + s) * 1000 }' "$work/time.out" >>"$work/$name-$n.tsv"
	)
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { cut -d' ' -f"$1" "$2" | median; }

report="$work/time.md"
{
	echo "GNU time of one start to the end of \`/bin/true\`, $runs runs each, interleaved; medians. $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load average $(cut -d' ' -f1 /proc/loadavg) at the start; Vault 1.19.0 dev server on loopback."
	echo
	echo "| secrets | tool | wall (EPOCHREALTIME) | max RSS | CPU (user + sys) |"
	echo "|---|---|---|---|---|"
} >"$report"
for n in ${sizes//,/ }; do
	setup "$n"
	for name in aion-exec consul-template; do measure "$name" "$n"; done # warm-up, not counted
	rm -f "$work"/*-"$n".tsv
	for _ in $(seq 1 "$runs"); do
		for name in aion-exec consul-template; do measure "$name" "$n"; done
	done
	for name in aion-exec consul-template; do
		f="$work/$name-$n.tsv"
		printf '| %s | %s | %s ms | %s KiB | %s ms |\n' "$n" "$name" "$(col 1 "$f")" "$(col 2 "$f")" "$(col 3 "$f")" >>"$report"
	done
	a=$(col 1 "$work/aion-exec-$n.tsv") c=$(col 1 "$work/consul-template-$n.tsv")
	log "$n secrets: aion-exec $a ms, consul-template $c ms (median wall)"
done
echo "load average $(cut -d' ' -f1 /proc/loadavg) at the end." >>"$report"
mkdir -p "$out"
cp "$report" "$out/time.md"
cat "$report"
