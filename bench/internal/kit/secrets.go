package kit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Fields is how many fields every bench secret has: f1 … f5.
const Fields = 5

// SecretName is secret i's name: s001.
func SecretName(i int) string { return fmt.Sprintf("s%03d", i) }

// EnvName is the variable that carries field f of secret i: S001_F1, the
// names benchchild counts.
func EnvName(i, f int) string { return fmt.Sprintf("S%03d_F%d", i, f) }

// EnvTemplate is aion-exec's user template for n secrets: every field of
// every secret, S001_F1={{ .s001.f1 }} and so on, the same 5×n variables
// the peers' env templates render.
func EnvTemplate(n int) string {
	var t strings.Builder
	for i := 1; i <= n; i++ {
		for f := 1; f <= Fields; f++ {
			fmt.Fprintf(&t, "%s={{ .%s.f%d }}\n", EnvName(i, f), SecretName(i), f)
		}
	}
	return t.String()
}

// SecretVars are aion-exec's variables for n secrets under dir of the KV
// mount: AION_S001_SECRET_PATH=dir/s001 and so on.
func SecretVars(dir string, n int) []string {
	vars := make([]string, 0, n)
	for i := 1; i <= n; i++ {
		vars = append(vars, fmt.Sprintf("AION_%s_SECRET_PATH=%s/%s", strings.ToUpper(SecretName(i)), dir, SecretName(i)))
	}
	return vars
}

// ToolEnv is the environment every wrapper starts with: nothing from the
// caller's shell (no stray VAULT_TOKEN), only what a container would have,
// and where benchchild writes its events.
func ToolEnv(dir, events string) []string {
	return []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + dir, "BENCH_EVENTS=" + events}
}

// WriteSecret writes the KV v2 secret at path (secret/data/…) with Fields
// fresh random fields and returns when the write was sent.
func (v *Vault) WriteSecret(ctx context.Context, path string) (time.Time, error) {
	data := map[string]string{}
	for f := 1; f <= Fields; f++ {
		data[fmt.Sprintf("f%d", f)] = randomValue()
	}
	t := time.Now()
	return t, v.Do(ctx, "POST", path, map[string]any{"data": data}, nil)
}

func randomValue() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Token is a token to create: scoped to one policy, renewable, with a
// display name of its own, which the audit log shows as "token-NAME".
type Token struct {
	Policy, TTL, DisplayName string
	// DefaultPolicy adds Vault's templated default policy, which Vault
	// parses again on every request.
	DefaultPolicy bool
}

// CreateToken creates t with the client's token and returns the new one.
func (v *Vault) CreateToken(ctx context.Context, t Token) (string, error) {
	var out struct {
		Auth struct {
			ClientToken string `json:"client_token"`
		} `json:"auth"`
	}
	err := v.Do(ctx, "POST", "auth/token/create", map[string]any{
		"policies": []string{t.Policy}, "ttl": t.TTL, "renewable": true, "display_name": t.DisplayName,
		"no_default_policy": !t.DefaultPolicy,
	}, &out)
	return out.Auth.ClientToken, err
}
