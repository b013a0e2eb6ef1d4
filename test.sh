#!/usr/bin/env bash
# Every test: the unit tests of the main module, then the integration tests
# against a real Vault, PostgreSQL and Node.js (see integration/).
set -euo pipefail
cd "$(dirname "$0")"
test -z "$(gofmt -l $(git ls-files '*.go'))" || { gofmt -l $(git ls-files '*.go'); echo "gofmt: files above need formatting" >&2; exit 1; }
go vet ./...
go vet -tags integration ./integration/
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 -tags integration ./integration/
go test -race -count=1 ./...
(tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
 for pkg in internal/supervise cmd/aion-exec; do   # the supervisor's tests and the actor group's again, as PID 1
   go test -c -race -o "$tmp/pkg.test" "./$pkg"
   (cd "$pkg"; unshare --pid --fork --mount-proc "$tmp/pkg.test" -test.count=1)
 done)
(cd bench && go vet ./... && go test -count=1 ./...)   # the benchmark harness, a module of its own
(cd examples/check && go vet ./... && go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./... && go test -count=1 ./...)   # the examples' static checks, a module of its own
(cd examples/node-service && npm ci --no-audit --no-fund --silent)
go test -tags integration -count=1 -timeout 45m ./integration/
