# Vault server for the example stack (docker-compose.yml): one node with
# integrated (Raft) storage, as the platform runs it, so that
# `aion-exec dev bootstrap` initialises and unseals a real server and the
# data survives `docker compose restart` (Vault then comes back sealed and
# the vault-bootstrap service unseals it again).
#
# For local development only: the listener has no TLS. In production, give
# the listener a tls_cert_file/tls_key_file and point AION_VAULT_CACERT at
# the CA.
#
# integration/examples_test.go starts the pinned Vault release with this
# file (storage path and addresses rewritten to a temp directory and free
# loopback ports) and runs dev bootstrap against it.

storage "raft" {
  # /vault/file exists in the hashicorp/vault image and is owned by the
  # vault user; the compose file mounts the vault-data volume there.
  path    = "/vault/file"
  node_id = "vault-0"
}

listener "tcp" {
  address         = "0.0.0.0:8200"
  cluster_address = "0.0.0.0:8201"
  tls_disable     = true
}

# How other nodes and clients reach this one: the compose service name.
api_addr     = "http://vault:8200"
cluster_addr = "http://vault:8201"

# Raft storage keeps its data in memory-mapped files; Vault recommends
# disable_mlock with integrated storage. (So the container needs no
# IPC_LOCK capability.)
disable_mlock = true

ui = true
