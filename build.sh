#!/usr/bin/env bash
# Builds aion-exec as it ships: static (no cgo), stripped, reproducible
# paths, and on amd64 linked with the entry that records the signal state
# aion-exec was started with before the Go runtime changes it (see
# docs/supervise.md), so that the child inherits it whole.
#   ./build.sh OUT [VERSION]
set -euo pipefail
cd "$(dirname "$0")"
out=${1:?usage: build.sh OUT [VERSION]}
ldflags="-s -w"
[ -n "${2:-}" ] && ldflags="$ldflags -X main.version=$2"
[ "$(go env GOARCH)" = amd64 ] && ldflags="$ldflags -E=github.com/aionos/aion-exec/internal/supervise.entry"
CGO_ENABLED=0 exec go build -trimpath -ldflags "$ldflags" -o "$out" ./cmd/aion-exec
