package bootstrap

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	policies "github.com/aionos/aion-exec/policies/vault"

	"github.com/aionos/aion-exec/internal/sysexits"
)

// policy is one policy of policies/vault, ready to write.
type policy struct{ name, text string }

// policyMountRE finds the mount at the start of every path rule. The files
// are written against secret/; only the first segment of a path rule is
// replaced, never text in comments.
var policyMountRE = regexp.MustCompile(`(?m)^(\s*path\s+")secret/`)

// templatePolicy points a policy written against secret/ at mount.
func templatePolicy(text, mount string) string {
	return policyMountRE.ReplaceAllStringFunc(text, func(m string) string {
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
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return sysexits.Wrap(sysexits.CantCreate, fmt.Errorf("create state directory %s: %w", dir, cause(err)))
	}
	st, err := os.Stat(dir)
	if err != nil {
		return sysexits.Wrap(sysexits.CantCreate, fmt.Errorf("create state directory %s: %w", dir, cause(err)))
	}
	if !st.IsDir() {
		return sysexits.Wrap(sysexits.CantCreate, fmt.Errorf("create state directory %s: it exists and is not a directory", dir))
	}
	if st.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return sysexits.Wrap(sysexits.CantCreate, fmt.Errorf("restrict state directory %s to mode 0700: %w", dir, cause(err)))
		}
	}
	return nil
}

// writeFileAtomic replaces path with data so that no reader ever sees half
// a file: a temporary file in the same directory, fsync, chmod, rename,
// fsync of the directory. Equal bytes are not rewritten (only the mode is
// corrected); changed reports whether the content changed. Errors leave the
// naming of path to the caller.
func writeFileAtomic(path string, data []byte, mode os.FileMode) (changed bool, err error) {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		if st, err := os.Stat(path); err == nil && st.Mode().Perm() != mode {
			if err := os.Chmod(path, mode); err != nil {
				return false, fmt.Errorf("chmod: %w", cause(err))
			}
		}
		return false, nil
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return false, fmt.Errorf("create a temporary file in %s: %w", dir, cause(err))
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(mode); err != nil {
		return false, fmt.Errorf("chmod: %w", cause(err))
	}
	if _, err = tmp.Write(data); err != nil {
		return false, cause(err)
	}
	if err = tmp.Sync(); err != nil {
		return false, fmt.Errorf("fsync: %w", cause(err))
	}
	if err = tmp.Close(); err != nil {
		return false, cause(err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return false, fmt.Errorf("rename into place: %w", cause(err))
	}
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return true, nil
}

// cause strips the operation and path an *fs.PathError repeats.
func cause(err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		return pe.Err
	case errors.As(err, &le):
		return le.Err
	}
	return err
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
	export := func(name, value string) { fmt.Fprintf(&b, "export %s=%s\n", name, shellQuote(value)) }
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

// shellQuote single-quotes s for POSIX shells: everything inside single
// quotes is literal; an embedded quote closes the quoting, is escaped as
// \' and reopens it.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// shellUnquote reverses shellQuote; a bare word is returned as it is.
func shellUnquote(s string) string {
	if !strings.HasPrefix(s, "'") {
		return s
	}
	var b strings.Builder
	for s != "" {
		if strings.HasPrefix(s, `\'`) {
			b.WriteByte('\'')
			s = s[2:]
			continue
		}
		if s[0] == '\'' {
			end := strings.IndexByte(s[1:], '\'')
			if end < 0 {
				b.WriteString(s[1:])
				break
			}
			b.WriteString(s[1 : end+1])
			s = s[end+2:]
			continue
		}
		b.WriteByte(s[0])
		s = s[1:]
	}
	return b.String()
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
			return strings.TrimSpace(shellUnquote(v))
		}
	}
	return ""
}

// writeEnvFile writes .env.vault.dev, mode 0600, atomically.
func (b *bootstrapper) writeEnvFile(context.Context) error {
	o := &b.opts
	cacert := o.CACert
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
			return sysexits.Wrap(sysexits.CantCreate, fmt.Errorf("write env file %s: %w", o.EnvFile, cause(err)))
		}
	}
	changed, err := writeFileAtomic(o.EnvFile, []byte(e.text()), 0o600)
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
