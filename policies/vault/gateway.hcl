# gateway: the API gateway. Read-only on its own secrets, in every
# deployment: "+" matches one path segment, the AION_ENV label
# (aionos/dev/jwt, aionos/prod/jwt). The mount secret/ is replaced with
# AION_VAULT_KV_MOUNT when the policy is written (see embed.go).
path "secret/data/aionos/+/jwt" {
  capabilities = ["read"]
}

path "secret/data/aionos/+/gateway-api-keys" {
  capabilities = ["read"]
}

path "secret/data/aionos/+/admin-token" {
  capabilities = ["read"]
}

path "secret/data/aionos/+/gateway-tls" {
  capabilities = ["read"]
}

path "secret/data/aionos/+/mtls-ca" {
  capabilities = ["read"]
}
