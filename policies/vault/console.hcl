# console: the web console. Read-only on the admin token it shares with the
# gateway, in every deployment: "+" matches one path segment, the AION_ENV
# label. The mount secret/ is replaced with AION_VAULT_KV_MOUNT when the
# policy is written (see embed.go).
path "secret/data/aionos/+/admin-token" {
  capabilities = ["read"]
}
