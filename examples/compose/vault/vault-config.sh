#!/bin/sh
# The vault-config step of the example stack (docker-compose.yml), run in the
# hashicorp/vault image right after `aion-exec dev bootstrap`:
#
# 1. dev bootstrap seeds the secrets for running everything on one machine
#    without Docker: db-main's host is 127.0.0.1 and minio's endpoint
#    127.0.0.1:9000. Inside the compose network those are the services
#    `postgres` and `minio`, so this patches the two fields (only when they
#    differ, so a second run writes nothing). The same by hand:
#
#      docker compose run --rm vault-config kv patch -mount=secret aionos/dev/db-main host=postgres
#
# 2. It copies the dev token from .env.vault.dev into a file of its own
#    (TOKEN_DIR/token, mode 0400, owned by TOKEN_OWNER), which the
#    aion-exec containers read through AION_VAULT_TOKEN_FILE. aion-exec
#    watches that file, so a later bootstrap that replaces the token reaches
#    the running service.
#
# With arguments it runs `vault ARGS...` with the root token instead, for
# the commands in examples/compose/README.md:
#
#   docker compose run --rm vault-config kv get -mount=secret aionos/dev/db-main
#
# It never prints a token or a secret value.
#
# Environment: VAULT_ADDR; STATE_DIR, where dev bootstrap wrote .vault/ and
# .env.vault.dev; KV_MOUNT (default secret); TOKEN_DIR; TOKEN_OWNER (uid:gid,
# optional).
set -eu

: "${VAULT_ADDR:?set VAULT_ADDR}" "${STATE_DIR:?set STATE_DIR}"
mount=${KV_MOUNT:-secret}
unseal="$STATE_DIR/.vault/dev-unseal.json"
envfile="$STATE_DIR/.env.vault.dev"

root=$(sed -n 's/.*"root_token":[[:space:]]*"\([^"]*\)".*/\1/p' "$unseal")
if [ -z "$root" ]; then
	echo "vault-config: no root_token in $unseal; did vault-bootstrap run?" >&2
	exit 1
fi
VAULT_TOKEN=$root
export VAULT_TOKEN

if [ "$#" -gt 0 ]; then
	exec vault "$@"
fi

# set_field SECRET KEY VALUE: patch KEY of aionos/dev/SECRET unless it has VALUE.
set_field() {
	current=$(vault kv get -mount="$mount" -field="$2" "aionos/dev/$1")
	if [ "$current" = "$3" ]; then
		echo "vault-config: $mount/aionos/dev/$1 $2 is $3"
		return
	fi
	vault kv patch -mount="$mount" "aionos/dev/$1" "$2=$3" >/dev/null
	echo "vault-config: $mount/aionos/dev/$1 $2 set to $3"
}
set_field db-main host postgres
set_field minio endpoint minio:9000

: "${TOKEN_DIR:?set TOKEN_DIR}"
token=$(sed -n "s/^export AION_VAULT_TOKEN='\([^']*\)'\$/\1/p" "$envfile")
if [ -z "$token" ]; then
	echo "vault-config: no AION_VAULT_TOKEN in $envfile" >&2
	exit 1
fi
if [ -f "$TOKEN_DIR/token" ] && [ "$(cat "$TOKEN_DIR/token")" = "$token" ]; then
	echo "vault-config: dev token in $TOKEN_DIR/token is current"
	exit 0
fi
umask 077
tmp="$TOKEN_DIR/.token.tmp"
printf '%s\n' "$token" >"$tmp"
chmod 0400 "$tmp"
if [ -n "${TOKEN_OWNER:-}" ]; then
	chown "$TOKEN_OWNER" "$tmp"
fi
# A rename, so that aion-exec never reads half a token.
mv -f "$tmp" "$TOKEN_DIR/token"
echo "vault-config: dev token in $TOKEN_DIR/token"
