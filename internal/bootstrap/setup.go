package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/hashicorp/vault/api"

	"github.com/aionos/aion-exec/internal/sysexits"
	"github.com/aionos/aion-exec/internal/vault"
)

// enableKV makes sure the KV mount exists and is version 2.
func (b *bootstrapper) enableKV(ctx context.Context) error {
	mount := b.opts.KVMount
	mounts, err := b.api.Sys().ListMountsWithContext(ctx)
	if err != nil {
		return vault.Fail("list secret engines", err)
	}
	if m, ok := mounts[mount+"/"]; ok {
		if err := checkKV2(mount, m); err != nil {
			return err
		}
		b.sum.add("mount", mount+"/ (kv-v2)", "present")
		return nil
	}
	err = b.api.Sys().MountWithContext(ctx, mount, &api.MountInput{
		Type:        "kv",
		Description: "AION-OS secrets (aion-exec dev bootstrap)",
		Options:     map[string]string{"version": "2"},
	})
	if err != nil {
		return vault.Fail("enable the KV-v2 engine at "+mount+"/ (AION_VAULT_KV_MOUNT)", err)
	}
	b.opts.Log.Info("enabled kv-v2", "mount", mount)
	b.sum.add("mount", mount+"/ (kv-v2)", "created")
	return nil
}

func checkKV2(mount string, m *api.MountOutput) error {
	if m.Type != "kv" && m.Type != "generic" {
		return sysexits.Wrap(sysexits.Usage, fmt.Errorf("enable KV v2 at %s/ (AION_VAULT_KV_MOUNT): a %s engine is mounted there; choose another mount", mount, m.Type))
	}
	if m.Options["version"] != "2" {
		return sysexits.Wrap(sysexits.Usage, fmt.Errorf("enable KV v2 at %s/ (AION_VAULT_KV_MOUNT): a KV version 1 engine is mounted there; "+
			"run `vault kv enable-versioning %s/` or choose another mount", mount, mount))
	}
	return nil
}

// writePolicies writes every policy of policies/vault with the KV mount
// templated in, skipping those Vault already holds byte for byte.
func (b *bootstrapper) writePolicies(ctx context.Context) error {
	pols, err := policyTexts(b.opts.KVMount)
	if err != nil {
		return err
	}
	for _, p := range pols {
		old, err := b.api.Sys().GetPolicyWithContext(ctx, p.name)
		if err != nil {
			return vault.Fail("read policy "+p.name, err)
		}
		if old == p.text {
			b.sum.add("policy", p.name, "present")
			continue
		}
		if err := b.api.Sys().PutPolicyWithContext(ctx, p.name, p.text); err != nil {
			return vault.Fail("write policy "+p.name+" from policies/vault/"+p.name+".hcl", err)
		}
		result := "created"
		if old != "" {
			result = "updated"
		}
		b.opts.Log.Info("wrote policy", "policy", p.name, "result", result)
		b.sum.add("policy", p.name, result)
	}
	return nil
}

// enableAppRole makes sure the AppRole auth method is mounted.
func (b *bootstrapper) enableAppRole(ctx context.Context) error {
	mount := b.opts.AppRoleMount
	auths, err := b.api.Sys().ListAuthWithContext(ctx)
	if err != nil {
		return vault.Fail("list auth methods", err)
	}
	if m, ok := auths[mount+"/"]; ok {
		if m.Type != "approle" {
			return sysexits.Wrap(sysexits.Usage, fmt.Errorf("enable approle at auth/%s (AION_VAULT_APPROLE_MOUNT): a %s method is mounted there; choose another mount", mount, m.Type))
		}
		b.sum.add("auth", mount+"/ (approle)", "present")
		return nil
	}
	err = b.api.Sys().EnableAuthWithOptionsWithContext(ctx, mount, &api.EnableAuthOptions{
		Type: "approle", Description: "AION-OS services (aion-exec dev bootstrap)",
	})
	if err != nil {
		return vault.Fail("enable the approle auth method at auth/"+mount, err)
	}
	b.opts.Log.Info("enabled approle", "mount", mount)
	b.sum.add("auth", mount+"/ (approle)", "created")
	return nil
}

// roleSettings are what each service's AppRole is held to. A login lasts an
// hour and renews up to a day; a secret ID is good for a day. A plain secret
// ID lets a service log in again after a restart; a wrapped one is spent by
// its first unwrap, and aion-exec keeps what it unwrapped to only for the
// life of the process, so a restarted service needs a new wrapped secret ID.
var roleSettings = map[string]any{
	"token_ttl":     "1h",
	"token_max_ttl": "24h",
	"secret_id_ttl": "24h",
}

// roleSeconds is roleSettings as Vault reads them back.
var roleSeconds = map[string]string{"token_ttl": "3600", "token_max_ttl": "86400", "secret_id_ttl": "86400"}

// writeRoles upserts one AppRole per service, only where it differs.
func (b *bootstrapper) writeRoles(ctx context.Context) error {
	for _, svc := range Services {
		path := "auth/" + b.opts.AppRoleMount + "/role/" + svc
		cur, err := b.api.Logical().ReadWithContext(ctx, path)
		if err != nil {
			return vault.Fail("read AppRole "+path, err)
		}
		result := "present"
		if cur == nil || !roleMatches(cur.Data, svc) {
			data := map[string]any{"token_policies": []string{svc}}
			for k, v := range roleSettings {
				data[k] = v
			}
			if _, err := b.api.Logical().WriteWithContext(ctx, path, data); err != nil {
				return vault.Fail("write AppRole "+path, err)
			}
			result = "created"
			if cur != nil {
				result = "updated"
			}
			b.opts.Log.Info("wrote approle", "role", path, "policy", svc, "result", result)
		}
		id, err := b.api.Logical().ReadWithContext(ctx, path+"/role-id")
		if err != nil {
			return vault.Fail("read the role ID of AppRole "+path, err)
		}
		if id == nil || id.Data["role_id"] == nil {
			return sysexits.Wrap(sysexits.Unavailable, fmt.Errorf("read the role ID of AppRole %s: Vault returned none", path))
		}
		b.roleIDs[svc] = fmt.Sprint(id.Data["role_id"])
		b.sum.add("approle", svc, result)
	}
	return nil
}

func roleMatches(data map[string]any, svc string) bool {
	pols, _ := data["token_policies"].([]any)
	if len(pols) != 1 || pols[0] != svc {
		return false
	}
	for k, want := range roleSeconds {
		if fmt.Sprint(data[k]) != want {
			return false
		}
	}
	return true
}

// devTokenTTL is the dev token's lifetime between renewals; aion-exec renews
// it while it runs.
const devTokenTTL = "24h"

// devToken reuses the token of an existing env file while Vault still knows
// it with the dev policy, else creates an orphan token (so that it outlives
// whatever created it) with only that policy.
func (b *bootstrapper) devToken(ctx context.Context) error {
	if old := readEnvToken(b.opts.EnvFile); old != "" {
		s, err := b.api.Logical().WriteWithContext(ctx, "auth/token/lookup", map[string]any{"token": old})
		var re *api.ResponseError
		switch {
		case err == nil && s != nil:
			pols, _ := s.TokenPolicies()
			if slices.Contains(pols, DevPolicy) {
				b.token = old
				b.opts.Log.Info("reusing dev token", "file", b.opts.EnvFile)
				b.sum.add("token", DevPolicy, "present (from "+b.opts.EnvFile+")")
				return nil
			}
			b.opts.Log.Info("dev token in the env file lacks the dev policy; creating a new one", "file", b.opts.EnvFile)
		case errors.As(err, &re) && re.StatusCode < 500:
			b.opts.Log.Info("dev token in the env file is no longer valid; creating a new one", "file", b.opts.EnvFile)
		case err != nil:
			return vault.Fail("look up the dev token from "+b.opts.EnvFile, err)
		}
	}
	renewable := true
	s, err := b.api.Auth().Token().CreateOrphanWithContext(ctx, &api.TokenCreateRequest{
		Policies:    []string{DevPolicy},
		TTL:         devTokenTTL,
		Renewable:   &renewable,
		DisplayName: DevPolicy,
		Metadata:    map[string]string{"created_by": "aion-exec dev bootstrap"},
	})
	if err != nil {
		return vault.Fail("create the dev token with policy "+DevPolicy, err)
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		return sysexits.Wrap(sysexits.Unavailable, errors.New("create the dev token: Vault returned no token"))
	}
	b.token = s.Auth.ClientToken
	b.opts.Log.Info("created dev token", "policy", DevPolicy, "ttl", devTokenTTL, "renewable", true, "accessor", s.Auth.Accessor)
	b.sum.add("token", DevPolicy, "created (ttl "+devTokenTTL+", renewable)")
	return nil
}
