# syntax=docker/dockerfile:1
#
# The example Node service (examples/node-service) with aion-exec as its
# entrypoint: way (b) of the repository's Dockerfile, aion-exec copied into
# another image.
#
# Build context: examples/ (the parent of this directory), so that
# node-service/ is in it. aion-exec comes from the named build context
# `aion-exec`: docker-compose.yml passes the image of its aion-exec service
# (`additional_contexts: aion-exec: service:vault-bootstrap`, which needs
# Docker Compose 2.22 or later). Without compose, from the repository root:
#
#   docker build -t aionos/aion-exec:dev .
#   docker build --build-context aion-exec=docker-image://aionos/aion-exec:dev \
#       -f examples/compose/node-service.Dockerfile -t aionos/aion-example-node-service:dev examples
#
# The same image is the main container of examples/kubernetes.

FROM node:20-bookworm-slim
WORKDIR /app
COPY node-service/package.json node-service/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY node-service/server.js ./
COPY node-service/templates ./templates
COPY --from=aion-exec /aion-exec /usr/local/bin/aion-exec
# The render directory, owned by the user the service runs as. The compose
# file mounts a tmpfs over it and Kubernetes an emptyDir (medium Memory),
# so rendered credentials never reach a disk.
RUN install -d -o 65532 -g 65532 -m 0700 /run/aion-exec
# 65532, distroless' nonroot, like aion-exec's own image: the compose stack
# hands one dev token file (mode 0400, owner 65532) to every container that
# logs in to Vault.
USER 65532:65532
ENV AION_TEMPLATES_DIR=/app/templates \
    AION_RENDER_DIR=/run/aion-exec \
    PORT=8080
EXPOSE 8080
# aion-exec is PID 1: it renders PGHOST/PGPORT/PGDATABASE into node's
# environment and db-credentials.json into /run/aion-exec, starts node,
# forwards signals, reaps zombies, sends SIGHUP on a password rotation and
# restarts node when the database moves.
ENTRYPOINT ["aion-exec", "--"]
CMD ["node", "server.js"]
