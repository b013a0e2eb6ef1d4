# syntax=docker/dockerfile:1
#
# aion-exec as a container image: one static binary on distroless, non-root.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t aionos/aion-exec:dev .
#
# The image's ENTRYPOINT is the binary itself, so arguments are aion-exec's:
#
#   docker run --rm aionos/aion-exec:dev version
#   docker run --rm -e AION_VAULT_ADDR=... -e AION_VAULT_TOKEN=... \
#       -v rendered:/run/aion-exec aionos/aion-exec:dev once        # an init container
#
# Two ways to put aion-exec in front of your own service:
#
# (a) As a base image, for a static service binary that needs no libc:
#
#       FROM aionos/aion-exec:VERSION
#       COPY --chown=65532:65532 server /app/server
#       CMD ["--", "/app/server"]
#
#     ENTRYPOINT stays ["/aion-exec"], so the container runs
#     `/aion-exec -- /app/server`: aion-exec is PID 1, renders the secrets,
#     starts the service and forwards signals to it.
#
# (b) Copied into any other image (Node.js, Python, a JVM, ...):
#
#       FROM node:20-bookworm-slim
#       COPY --from=aionos/aion-exec:VERSION /aion-exec /usr/local/bin/aion-exec
#       ...
#       USER 65532:65532
#       ENTRYPOINT ["aion-exec", "--"]
#       CMD ["node", "server.js"]
#
#     examples/compose/node-service.Dockerfile does exactly this.
#
# aion-exec writes rendered files to AION_RENDER_DIR, by default /run/aion-exec
# (XDG_RUNTIME_DIR is unset here). The image ships that directory, owned by
# the non-root user and mode 0700, so the image works with a read-only root
# file system once a volume (an emptyDir with medium Memory, a tmpfs, a named
# volume) is mounted there. A new Docker named volume mounted at
# /run/aion-exec inherits that owner and mode.

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY cmd ./cmd
COPY internal ./internal
COPY policies ./policies
COPY templates ./templates
ARG VERSION=dev
# Static (no cgo, so no libc), reproducible paths, no symbol table; on
# amd64 the entry that records the signal state aion-exec starts with, for
# the child (docs/supervise.md). The same build as ./build.sh.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    ldflags="-s -w -X main.version=${VERSION}"; \
    if [ "$(go env GOARCH)" = amd64 ]; then ldflags="$ldflags -E=github.com/aionos/aion-exec/internal/supervise.entry"; fi; \
    CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o /out/aion-exec ./cmd/aion-exec
# The render directory. The final stage has no shell to make it, so it is
# made here and copied as an entry of its parent, which keeps its mode.
RUN mkdir -p /out/run/aion-exec && chmod 0700 /out/run/aion-exec

# distroless/static: CA certificates, tzdata, /etc/passwd with nonroot
# (65532), no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="aion-exec" \
      org.opencontainers.image.description="Renders HashiCorp Vault secrets into env vars and files and supervises a service" \
      org.opencontainers.image.source="https://github.com/aionos/aion-exec"
COPY --from=build /out/aion-exec /aion-exec
COPY --from=build --chown=65532:65532 /out/run/ /run/
USER 65532:65532
ENTRYPOINT ["/aion-exec"]
CMD ["--help"]
