#!/usr/bin/env bash
# Builds consul-template (the exec-mode peer of the benchmarks) from the Go
# module proxy and caches it outside the repo, stripped and as `go install`
# builds it (for its size). Prints the stripped binary's path, then the
# unstripped one's, one a line. It never enters the main module: go install
# pkg@version builds in module mode from the tagged release's own go.mod.
set -euo pipefail

CT_VERSION=${CT_VERSION:-v0.41.1}
cache=${AION_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aion-exec}
dir="$cache/consul-template-$CT_VERSION"
stripped="$dir/stripped/consul-template"
full="$dir/consul-template"

ok() { [ -x "$stripped" ] && [ -x "$full" ] && "$stripped" -version >/dev/null 2>&1; }
if ok; then
	printf '%s\n%s\n' "$stripped" "$full"
	exit 0
fi
mkdir -p "$dir/stripped"
exec 9>"$dir/.lock"
flock 9
if ! ok; then
	echo "building consul-template $CT_VERSION into $dir (first run only)" >&2
	# Outside any module, so that no go.mod or go.work of ours applies.
	cd "$dir"
	GOFLAGS=-mod=mod GOWORK=off CGO_ENABLED=0 GOBIN="$dir/stripped" \
		go install -trimpath -ldflags "-s -w" "github.com/hashicorp/consul-template@$CT_VERSION"
	GOFLAGS=-mod=mod GOWORK=off CGO_ENABLED=0 GOBIN="$dir" \
		go install -trimpath "github.com/hashicorp/consul-template@$CT_VERSION"
	ok || { echo "build-consul-template: the built binary does not run" >&2; exit 1; }
fi
printf '%s\n%s\n' "$stripped" "$full"
