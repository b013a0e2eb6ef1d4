#!/usr/bin/env bash
# Builds the pinned Vault server used as a test fixture (and as the Vault Agent
# peer in bench/) from the Go module proxy, and caches it outside the repo.
# Vault is BUSL-licensed: this binary is a test fixture and is never shipped.
# Prints the binary's path on stdout.
set -euo pipefail

VAULT_VERSION=${VAULT_VERSION:-v1.19.0}
cache=${AION_TEST_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/aion-exec}
dir="$cache/vault-$VAULT_VERSION"
bin="$dir/vault"

if [ -x "$bin" ] && "$bin" version >/dev/null 2>&1; then
	echo "$bin"
	exit 0
fi

mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
if [ -x "$bin" ] && "$bin" version >/dev/null 2>&1; then
	echo "$bin"
	exit 0
fi

echo "building vault $VAULT_VERSION into $dir (first run only, a few minutes)" >&2
src=$(cd "$dir" && GOFLAGS=-mod=mod go mod download -json "github.com/hashicorp/vault@$VAULT_VERSION" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$src" ] || { echo "build-vault: module source not found for $VAULT_VERSION" >&2; exit 1; }

work=$(mktemp -d "$dir/src.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cp -r "$src/." "$work/"
chmod -R u+w "$work"
cd "$work"
# The release's go.mod replaces api, sdk and api/auth/* with directories of its
# own tree; the module zip lacks them, so take the published versions instead.
for old in $(sed -n 's|^replace \([^ ]*\) => \./.*|\1|p' go.mod); do
	go mod edit -dropreplace="$old"
done
GOFLAGS=-mod=mod CGO_ENABLED=0 go build -tags minimal -trimpath -ldflags "-s -w" -o "$dir/vault.tmp" .
mv "$dir/vault.tmp" "$bin"
echo "$bin"
