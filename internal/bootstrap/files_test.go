package bootstrap

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aionos/aion-exec/internal/sysexits"
	"github.com/aionos/aion-exec/internal/vault"
)

func TestTemplatePolicy(t *testing.T) {
	t.Parallel()
	in := `# reads secret/data/aionos/+/jwt; the comment keeps secret/
path "secret/data/aionos/+/jwt" {
  capabilities = ["read"]
}
  path   "secret/metadata/aionos/dev/*" { capabilities = ["list"] }
path "sys/secret/x" { capabilities = ["read"] }
`
	for _, tc := range []struct{ mount, want string }{
		{"secret", in},
		{"kv", `# reads secret/data/aionos/+/jwt; the comment keeps secret/
path "kv/data/aionos/+/jwt" {
  capabilities = ["read"]
}
  path   "kv/metadata/aionos/dev/*" { capabilities = ["list"] }
path "sys/secret/x" { capabilities = ["read"] }
`},
		{"team/kv", `# reads secret/data/aionos/+/jwt; the comment keeps secret/
path "team/kv/data/aionos/+/jwt" {
  capabilities = ["read"]
}
  path   "team/kv/metadata/aionos/dev/*" { capabilities = ["list"] }
path "sys/secret/x" { capabilities = ["read"] }
`},
	} {
		if got := templatePolicy(in, tc.mount); got != tc.want {
			t.Errorf("templatePolicy(%s) =\n%s\nwant\n%s", tc.mount, got, tc.want)
		}
	}
}

var pathRuleRE = regexp.MustCompile(`(?m)^\s*path\s+"([^"]+)"\s*\{\s*$\s*capabilities\s*=\s*\[([^\]]*)\]`)

// TestEmbeddedPolicies holds policies/vault to least privilege: every rule
// is on the templated mount, under aionos/, read (or list) only, and each
// service reads exactly its own secrets.
func TestEmbeddedPolicies(t *testing.T) {
	t.Parallel()
	pols, err := policyTexts("kv")
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string][]string{}
	for _, p := range pols {
		if strings.Contains(p.text, `path "secret/`) {
			t.Errorf("%s: a path rule still names secret/ after templating for kv", p.name)
		}
		rules := pathRuleRE.FindAllStringSubmatch(p.text, -1)
		if n := strings.Count(p.text, "path \""); n != len(rules) || n == 0 {
			t.Errorf("%s: %d path rules, %d in the form path \"...\" { capabilities = [...] }", p.name, n, len(rules))
		}
		for _, r := range rules {
			if !strings.HasPrefix(r[1], "kv/data/aionos/") && !strings.HasPrefix(r[1], "kv/metadata/aionos/") {
				t.Errorf("%s: rule on %s, outside kv/{data,metadata}/aionos/", p.name, r[1])
			}
			for _, c := range strings.Split(r[2], ",") {
				c = strings.Trim(strings.TrimSpace(c), `"`)
				if c != "read" && !(c == "list" && strings.Contains(r[1], "/metadata/")) {
					t.Errorf("%s: capability %q on %s; policies are read-only", p.name, c, r[1])
				}
			}
			byName[p.name] = append(byName[p.name], r[1])
		}
	}
	want := map[string][]string{
		"gateway": {"kv/data/aionos/+/jwt", "kv/data/aionos/+/gateway-api-keys", "kv/data/aionos/+/admin-token", "kv/data/aionos/+/gateway-tls", "kv/data/aionos/+/mtls-ca"},
		"control": {"kv/data/aionos/+/db-main", "kv/data/aionos/+/minio", "kv/data/aionos/+/control-tls", "kv/data/aionos/+/mtls-ca"},
		"console": {"kv/data/aionos/+/admin-token"},
		DevPolicy: {"kv/data/aionos/dev/*", "kv/metadata/aionos/dev/*"},
	}
	if len(byName) != len(want) {
		t.Errorf("policies %v, want %v", byName, want)
	}
	for name, paths := range want {
		if !slices.Equal(byName[name], paths) {
			t.Errorf("policy %s paths\n%v\nwant\n%v", name, byName[name], paths)
		}
	}
	for _, svc := range Services {
		if _, ok := want[svc]; !ok {
			t.Errorf("service %s has no policy", svc)
		}
	}
}

func TestEnvFileIsSourceableAndPrivate(t *testing.T) {
	t.Parallel()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", ".env.vault.dev")
	tricky := `hvs.it's "quoted" $HOME ` + "`id`" + ` \n; rm -rf /`
	b := &bootstrapper{
		opts: Options{Addr: "http://127.0.0.1:8200", KVMount: "team/kv", AppRoleMount: "approle", EnvFile: path, TLS: vault.TLS{CACert: "ca.pem"}},
		sum:  &Summary{}, token: tricky,
		roleIDs: map[string]string{"gateway": "gw-id", "control": "ctl-id", "console": "con-id"},
	}
	b.opts.defaults()
	if err := b.writeEnvFile(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("env file mode %o, want 0600", st.Mode().Perm())
	}
	out, err := exec.Command(sh, "-c", `. "$1" && printf '%s\n' "$AION_VAULT_ADDR" "$AION_VAULT_TOKEN" "$AION_VAULT_KV_MOUNT" "$AION_ENV" "$AION_DB_SECRET_PATH" "$AION_MINIO_SECRET_PATH" "$AION_JWT_SECRET_PATH" "$AION_GATEWAY_API_KEYS_SECRET_PATH" "$AION_ADMIN_TOKEN_SECRET_PATH" "$AION_VAULT_CACERT"`, "sh", path).CombinedOutput()
	if err != nil {
		t.Fatalf("source env file: %v\n%s", err, out)
	}
	abs, _ := filepath.Abs("ca.pem")
	want := []string{"http://127.0.0.1:8200", tricky, "team/kv", "dev", "aionos/dev/db-main", "aionos/dev/minio", "aionos/dev/jwt",
		"aionos/dev/gateway-api-keys", "aionos/dev/admin-token", abs}
	if got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n"); !slices.Equal(got, want) {
		t.Errorf("sourced values\n%q\nwant\n%q", got, want)
	}
	text, _ := os.ReadFile(path)
	for _, line := range strings.Split(strings.TrimSuffix(string(text), "\n"), "\n") {
		if !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "export AION_") {
			t.Errorf("line %q is neither a comment nor an export of an AION_ variable", line)
		}
	}
	for _, id := range []string{"# gateway role_id=gw-id", "# control role_id=ctl-id", "# console role_id=con-id"} {
		if !strings.Contains(string(text), id+"\n") {
			t.Errorf("env file lacks %q:\n%s", id, text)
		}
	}
	if got := readEnvToken(path); got != tricky {
		t.Errorf("readEnvToken = %q, want %q", got, tricky)
	}
	if got := b.sum.Steps[0].Result; got != "written" {
		t.Errorf("first write: %s, want written", got)
	}

	// Equal bytes: not rewritten, but a loosened mode is tightened again.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(path)
	if err := b.writeEnvFile(context.Background()); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(path)
	if got := b.sum.Steps[1].Result; got != "unchanged" {
		t.Errorf("second write: %s, want unchanged", got)
	}
	if !os.SameFile(before, after) {
		t.Error("unchanged env file was replaced")
	}
	if after.Mode().Perm() != 0o600 {
		t.Errorf("mode after rewrite %o, want 0600", after.Mode().Perm())
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only the env file (no temporary files left)", len(ents))
	}
}

func TestEnsurePrivateDirTightens(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), ".vault")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := ensurePrivateDir(dir); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(dir)
	if st.Mode().Perm() != 0o700 {
		t.Errorf("mode %o, want 0700", st.Mode().Perm())
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	if err := ensurePrivateDir(file); sysexits.Code(err) != sysexits.CantCreate {
		t.Errorf("ensurePrivateDir(a file) = %v, want exit %d", err, sysexits.CantCreate)
	}
}

func TestReadUnsealFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if u, err := readUnsealFile(filepath.Join(dir, "missing.json")); u != nil || err != nil {
		t.Errorf("missing file: %v, %v; want nil, nil", u, err)
	}
	// Ours, the format of `vault operator init -format=json`.
	u, err := readUnsealFile(write("init.json", `{"unseal_keys_b64":["b64key"],"unseal_keys_hex":["hexkey"],"unseal_shares":1,"unseal_threshold":1,"root_token":"hvs.root"}`))
	if err != nil || !slices.Equal(u.keys(), []string{"b64key"}) || u.RootToken != "hvs.root" {
		t.Errorf("init format: %+v, %v", u, err)
	}
	// What the Python script saved: hvac's answer to sys/init.
	u, err = readUnsealFile(write("hvac.json", `{"keys":["hexkey"],"keys_base64":["b64key"],"root_token":"hvs.root"}`))
	if err != nil || !slices.Equal(u.keys(), []string{"b64key"}) || u.RootToken != "hvs.root" {
		t.Errorf("hvac format: %+v, %v", u, err)
	}
	for name, body := range map[string]string{"garbage.json": "{", "nokeys.json": `{"root_token":"x"}`, "noroot.json": `{"unseal_keys_b64":["k"]}`} {
		_, err := readUnsealFile(write(name, body))
		if sysexits.Code(err) != sysexits.Usage || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v; want exit 64 naming the file", name, err)
		}
	}
}

func TestSummaryTable(t *testing.T) {
	t.Parallel()
	s := &Summary{Addr: "http://127.0.0.1:8200"}
	s.add("secret", "secret/aionos/dev/db-main", "created")
	s.add("policy", "gateway", "present")
	var b strings.Builder
	if _, err := s.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	want := "dev bootstrap of http://127.0.0.1:8200\n" +
		"  secret  secret/aionos/dev/db-main  created\n" +
		"  policy  gateway                    present\n"
	if b.String() != want {
		t.Errorf("summary\n%s\nwant\n%s", b.String(), want)
	}
	if s.Count("created") != 1 || s.Count("present") != 1 {
		t.Errorf("Count: created %d, present %d", s.Count("created"), s.Count("present"))
	}
}

func TestRunWithoutVaultTimesOut(t *testing.T) {
	t.Parallel()
	// A port nothing listens on: the wait gives up after Timeout with 69.
	dir := t.TempDir()
	_, err := Run(context.Background(), Options{Addr: "http://127.0.0.1:1", Timeout: 300 * time.Millisecond,
		StateDir: filepath.Join(dir, ".vault"), EnvFile: filepath.Join(dir, ".env.vault.dev")})
	if sysexits.Code(err) != sysexits.Unavailable || !strings.Contains(err.Error(), "AION_VAULT_BOOTSTRAP_TIMEOUT") {
		t.Errorf("Run = %v; want exit 69 naming AION_VAULT_BOOTSTRAP_TIMEOUT", err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".vault")); !os.IsNotExist(err) {
		t.Errorf("state directory created without a Vault: %v", err)
	}
}
