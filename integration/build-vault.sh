#!/usr/bin/env bash
# Builds the pinned Vault server used as a test fixture (and as the Vault Agent
# peer in bench/) from the Go module proxy, and caches it outside the repo;
# from the same module source, Vault's own PostgreSQL database plugin, into
# the plugin directory $(dirname vault)/plugins.
# Vault is BUSL-licensed: these binaries are test fixtures and are never shipped.
# Prints the vault binary's path on stdout (and nothing else: callers read it).
set -euo pipefail

VAULT_VERSION=${VAULT_VERSION:-v1.19.0}
cache=${AION_TEST_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/aion-exec}
dir="$cache/vault-$VAULT_VERSION"
bin="$dir/vault"
# A dev server started with -dev-plugin-dir registers every file in the
# directory, so nothing else may be written there.
plugin="$dir/plugins/postgresql-database-plugin"

vault_built() { [ -x "$bin" ] && "$bin" version >/dev/null 2>&1; }
plugin_built() { [ -x "$plugin" ]; }

if vault_built && plugin_built; then
	echo "$bin"
	exit 0
fi

mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
if vault_built && plugin_built; then
	echo "$bin"
	exit 0
fi

echo "building vault $VAULT_VERSION and its database plugin into $dir (first run only, a few minutes)" >&2
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

# build OUT PKG: one binary of the prepared tree, written to OUT.tmp and
# renamed into place, so that a half-written binary is never taken as built.
build() {
	local start=$SECONDS
	echo "building $(basename "$1")" >&2
	GOFLAGS=-mod=mod CGO_ENABLED=0 go build -tags minimal -trimpath -ldflags "-s -w" -o "$dir/$(basename "$1").tmp" "$2"
	mv "$dir/$(basename "$1").tmp" "$1"
	echo "built $(basename "$1") in $((SECONDS - start))s" >&2
}
vault_built || build "$bin" .
mkdir -p "$dir/plugins"
plugin_built || build "$plugin" ./plugins/database/postgresql/postgresql-database-plugin
echo "$bin"
