# control: the control plane. Read-only on its own secrets, in every
# deployment: "+" matches one path segment, the AION_ENV label. The mount
# secret/ is replaced with AION_VAULT_KV_MOUNT when the policy is written
# (see embed.go).
path "secret/data/aionos/+/db-main" {
  capabilities = ["read"]
}

path "secret/data/aionos/+/minio" {
  capabilities = ["read"]
}

path "secret/data/aionos/+/control-tls" {
  capabilities = ["read"]
}

path "secret/data/aionos/+/mtls-ca" {
  capabilities = ["read"]
}
