# What the benchmark scripts share; sourced by run.sh, fleet.sh and
# leases.sh once they have set $here (bench/) and $work (their scratch
# directory) and defined log.

# stop PID SECONDS SIGNAL: signal, wait at most SECONDS, then SIGKILL.
stop() {
	local pid=$1 secs=$2 sig=$3
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
	kill "-$sig" "$pid" 2>/dev/null || true
	for _ in $(seq 1 $((secs * 5))); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
	kill -KILL "$pid" 2>/dev/null || true
}

# build_tools NAME: builds bench/cmd/NAME, the measuring tool, and
# benchchild, static and stripped, into $work/bin.
build_tools() {
	# bench/ is a module of its own (its deps stay out of the main module);
	# it replaces the main module with this checkout, so -mod=mod lets it
	# follow the main module's go.mod as that changes.
	export GOWORK=off
	(cd "$here" && GOFLAGS="${GOFLAGS:-} -mod=mod" go build -o "$work/bin/$1" "./cmd/$1" &&
		GOFLAGS="${GOFLAGS:-} -mod=mod" CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/bin/benchchild" ./cmd/benchchild)
}

# start_dev_vault VAULT PORT [ARG...]: a Vault dev server on
# 127.0.0.1:PORT ($VAULT_ADDR) with root token "root", its log in
# $work/vault.log; sets vault_pid and returns once it answers, or ends the
# script.
start_dev_vault() {
	local vault=$1 port=$2 up=""
	shift 2
	# Its own HOME keeps the dev server from touching the caller's ~/.vault-token.
	HOME="$work" "$vault" server -dev -dev-listen-address="127.0.0.1:$port" "$@" \
		-dev-root-token-id=root -dev-no-store-token >"$work/vault.log" 2>&1 &
	vault_pid=$!
	for _ in $(seq 1 150); do
		if VAULT_TOKEN=root HOME="$work" "$vault" status >/dev/null 2>&1; then up=1; break; fi
		kill -0 "$vault_pid" 2>/dev/null || break
		sleep 0.2
	done
	[ -n "$up" ] || { log "Vault did not start:"; tail -20 "$work/vault.log" >&2; exit 1; }
}
