package bootstrap

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"

	policies "github.com/aionos/aion-exec/policies/vault"

	"github.com/aionos/aion-exec/internal/atomicfile"
	"github.com/aionos/aion-exec/internal/shell"
	"github.com/aionos/aion-exec/internal/sysexits"
)

// policy is one policy of policies/vault, ready to write.
type policy struct{ name, text string }

// policyMountRE finds the mount at the start of every path rule. The files
// are written against secret/; only the first segment of a path rule is
// replaced, never text in comments.
var policyMountRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?m)^(\s*path\s+")secret/`) })

// templatePolicy points a policy written against secret/ at mount.
func templatePolicy(text, mount string) string {
	return policyMountRE().ReplaceAllStringFunc(text, func(m string) string {
		return strings.TrimSuffix(m, "secret/") + mount + "/"
	})
}

// policyTexts returns every embedded policy for mount, sorted by name.
func policyTexts(mount string) ([]policy, error) {
	names, err := fs.Glob(policies.FS, "*.hcl")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	out := make([]policy, 0, len(names))
	for _, n := range names {
		b, err := fs.ReadFile(policies.FS, n)
		if err != nil {
			return nil, err
		}
		out = append(out, policy{name: strings.TrimSuffix(n, ".hcl"), text: templatePolicy(string(b), mount)})
	}
	return out, nil
}

// ensurePrivateDir creates dir 0700, or tightens an existing one to 0700:
// it holds the root token.
func ensurePrivateDir(dir string) error {
	if err := atomicfile.MkdirPrivate(dir, nil); err != nil {
		return sysexits.Wrap(sysexits.CantCreate, fmt.Errorf("state directory: %w", err))
	}
	return nil
}

// platformSecrets are the five AION_<NAME>_SECRET_PATH of the platform and
// the dev secret each names.
var platformSecrets = []struct{ env, name string }{
	{"AION_DB_SECRET_PATH", "db-main"},
	{"AION_MINIO_SECRET_PATH", "minio"},
	{"AION_JWT_SECRET_PATH", "jwt"},
	{"AION_GATEWAY_API_KEYS_SECRET_PATH", "gateway-api-keys"},
	{"AION_ADMIN_TOKEN_SECRET_PATH", "admin-token"},
}

// envFile is what .env.vault.dev says.
type envFile struct {
	Addr, Token, KVMount, Namespace, CACert string
	AppRoleMount                            string
	RoleIDs                                 map[string]string // service -> role ID
}

// text renders the file: POSIX sh, every value single-quoted, so that
// `. ./.env.vault.dev` sets exactly these values. Paths are written
// expanded (aionos/dev/db-main) since sh would not expand ${AION_ENV} in
// single quotes. Role IDs are comments: an AION_* variable aion-exec does
// not know would draw its typo warning, and token auth needs none. No
// timestamp, so that an unchanged file is not rewritten.
func (e envFile) text() string {
	var b strings.Builder
	b.WriteString("# Vault for local development, written by `aion-exec dev bootstrap` (run it again to refresh).\n")
	b.WriteString("# Source it before starting the stack:  . ./" + filepath.Base(DefaultEnvFile) + "\n")
	b.WriteString("# It holds a Vault token: keep it mode 0600 and out of version control.\n")
	export := func(name, value string) { fmt.Fprintf(&b, "export %s=%s\n", name, shell.Quote(value)) }
	export("AION_VAULT_ADDR", e.Addr)
	export("AION_VAULT_TOKEN", e.Token)
	export("AION_VAULT_KV_MOUNT", e.KVMount)
	if e.Namespace != "" {
		export("AION_VAULT_NAMESPACE", e.Namespace)
	}
	if e.CACert != "" {
		export("AION_VAULT_CACERT", e.CACert)
	}
	export("AION_ENV", Env)
	for _, s := range platformSecrets {
		export(s.env, SecretPrefix+s.name)
	}
	var others []string
	for _, sd := range seeds {
		if !isPlatformSecret(sd.name) {
			others = append(others, sd.name)
		}
	}
	fmt.Fprintf(&b, "#\n# Also seeded, for services that name them: %s{%s}\n", SecretPrefix, strings.Join(others, ","))
	if len(e.RoleIDs) > 0 {
		fmt.Fprintf(&b, "#\n# AppRole role IDs (auth/%s), for trying the production login; a wrapped secret ID:\n", e.AppRoleMount)
		fmt.Fprintf(&b, "#   vault write -wrap-ttl=10m -f auth/%s/role/<service>/secret-id\n", e.AppRoleMount)
		for _, svc := range Services {
			if id, ok := e.RoleIDs[svc]; ok {
				fmt.Fprintf(&b, "# %s role_id=%s\n", svc, id)
			}
		}
	}
	return b.String()
}

func isPlatformSecret(name string) bool {
	for _, s := range platformSecrets {
		if s.name == name {
			return true
		}
	}
	return false
}

// readEnvToken returns AION_VAULT_TOKEN from an existing env file, or "".
func readEnvToken(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export ")
		if v, ok := strings.CutPrefix(line, "AION_VAULT_TOKEN="); ok {
			return strings.TrimSpace(shell.Unquote(v))
		}
	}
	return ""
}

// writeEnvFile writes .env.vault.dev, mode 0600, atomically.
func (b *bootstrapper) writeEnvFile(context.Context) error {
	o := &b.opts
	cacert := o.TLS.CACert
	if cacert != "" {
		if abs, err := filepath.Abs(cacert); err == nil {
			cacert = abs // the file is sourced from anywhere
		}
	}
	e := envFile{
		Addr: o.Addr, Token: b.token, KVMount: o.KVMount, Namespace: o.Namespace, CACert: cacert,
		AppRoleMount: o.AppRoleMount, RoleIDs: b.roleIDs,
	}
	if dir := filepath.Dir(o.EnvFile); dir != "." {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return sysexits.Wrap(sysexits.CantCreate, fmt.Errorf("write env file %s: %w", o.EnvFile, atomicfile.Cause(err)))
		}
	}
	changed, err := atomicfile.Write(o.EnvFile, []byte(e.text()), 0o600, nil)
	if err != nil {
		return sysexits.Wrap(sysexits.CantCreate, fmt.Errorf("write env file %s: %w", o.EnvFile, err))
	}
	result := "unchanged"
	if changed {
		result = "written"
		o.Log.Info("wrote env file", "file", o.EnvFile, "mode", "0600")
	}
	b.sum.add("file", o.EnvFile, result)
	return nil
}
