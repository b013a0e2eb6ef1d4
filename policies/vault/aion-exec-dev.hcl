# aion-exec-dev: the development token that `aion-exec dev bootstrap` writes
# to .env.vault.dev. It reads every secret of the dev deployment (a laptop
# runs every service with it) and can list them, but writes nothing and sees
# no other deployment. The mount secret/ is replaced with AION_VAULT_KV_MOUNT
# when the policy is written (see embed.go).
path "secret/data/aionos/dev/*" {
  capabilities = ["read"]
}

path "secret/metadata/aionos/dev/*" {
  capabilities = ["read", "list"]
}
