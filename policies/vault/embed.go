// Package policies holds the Vault ACL policies of the AION-OS services, one
// <name>.hcl per policy, embedded so that `aion-exec dev bootstrap` writes the
// very files that operators apply in production. It must never hold logic.
//
// Every path is written against the KV mount secret/. Whoever writes a policy
// to a Vault whose KV-v2 mount has another name (AION_VAULT_KV_MOUNT) replaces
// the leading `path "secret/` with that mount; dev bootstrap does it, and by
// hand it is
//
//	sed 's|path "secret/|path "kv/|' gateway.hcl | vault policy write gateway -
package policies

import "embed"

// FS holds every *.hcl policy; the policy's name is the file's name without .hcl.
//
//go:embed *.hcl
var FS embed.FS
