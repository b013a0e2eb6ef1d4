//go:build integration

package integration

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"
)

// TestExamplesComposeTopology runs the compose stack's Vault and one-shot
// services as processes, each with its service's command, environment and
// volumes (a directory per named volume, the repository's files for bind
// mounts): the pinned Vault release starts from vault/vault.hcl (storage
// path and addresses rewritten to a temp directory and free ports);
// vault-bootstrap's `dev bootstrap` initialises and seeds it; vault-config's
// script patches the hosts and writes the token file, and a second run
// changes nothing; render-init's `once` renders the files postgres and
// minio read their credentials from, equal to Vault's; and the Node
// service's aion-exec gives node PGHOST=postgres and the credentials file.
func TestExamplesComposeTopology(t *testing.T) {
	t.Parallel()
	st := &exStack{t: t, top: exLoadTopology(t), volumes: map[string]string{}, dir: t.TempDir()}
	for _, name := range st.top.Compose.Volumes {
		st.volumes[name] = t.TempDir()
	}
	st.startVault()
	workdir, root := st.bootstrap()
	db, minio := st.vaultConfig(workdir, root)
	st.renderInit(db, minio)
	st.readers()
	st.runService(db)
}

// exStack is the compose stack as processes on this machine.
type exStack struct {
	t          *testing.T
	top        *exTopology
	volumes    map[string]string // named volume -> directory
	dir        string            // the working directory of the services
	v          *Vault
	vaultHosts []string // Vault's address in the stack, host:port
}

func (st *exStack) service(name string) exService {
	st.t.Helper()
	s, ok := st.top.Compose.Services[name]
	if !ok {
		st.t.Fatalf("examples/compose has no service %q", name)
	}
	return s
}

// proc is the service's container as a process: its environment, its
// volumes and tmpfs mounts, and, for an image built here, its image's
// files.
func (st *exStack) proc(name string, builtHere bool) *exProc {
	st.t.Helper()
	s := st.service(name)
	p := &exProc{where: "compose service " + name, env: maps.Clone(s.Environment)}
	if builtHere {
		p.addImage(st.top.image(st.t, "service "+name, s.Image))
	}
	for _, m := range s.Mounts {
		switch m.Type {
		case "volume":
			m.Source = st.volumes[m.Source]
		case "tmpfs":
			m.Source = st.t.TempDir()
			if err := os.Chmod(m.Source, 0o700); err != nil {
				st.t.Fatal(err)
			}
		}
		p.mounts = append(p.mounts, m)
	}
	return p
}

// startVault starts the pinned release with the vault service's config
// file, rewritten for this machine.
func (st *exStack) startVault() {
	t := st.t
	vsvc := st.proc("vault", false)
	var cfgPath string
	for _, a := range st.service("vault").Command {
		if v, ok := strings.CutPrefix(a, "-config="); ok {
			cfgPath = v
		}
	}
	hostCfg, ok := vsvc.resolve(cfgPath)
	if cfgPath == "" || !ok {
		t.Fatalf("service vault: command %v names no -config file that a volume provides", st.service("vault").Command)
	}
	hcl, err := os.ReadFile(hostCfg)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^storage\s+"raft"\s*\{`).Match(hcl) {
		t.Errorf("%s: storage is not raft", hostCfg)
	}
	field := func(key string) string {
		m := regexp.MustCompile(`(?m)^\s*`+key+`\s*=\s*"([^"]*)"`).FindAllSubmatch(hcl, -1)
		if len(m) != 1 {
			t.Fatalf("%s: %d %s settings, want 1 (the test rewrites it)", hostCfg, len(m), key)
		}
		return string(m[0][1])
	}
	raftPath, listen, apiAddr := field("path"), field("address"), field("api_addr")
	if _, ok := vsvc.resolve(raftPath); !ok {
		t.Errorf("vault.hcl: raft path %s is on no volume of the vault service: its data would not survive", raftPath)
	}
	_, listenPort, _ := strings.Cut(listen, ":")
	api, err := url.Parse(apiAddr)
	if err != nil || api.Hostname() != "vault" || api.Port() != listenPort {
		t.Errorf("vault.hcl: api_addr %s is not http://vault:%s (the service, the listener's port)", apiAddr, listenPort)
	}
	st.vaultHosts = []string{"vault:" + listenPort}

	port, cport := freePort(t), freePort(t)
	raft := filepath.Join(st.dir, "raft")
	if err := os.MkdirAll(raft, 0o700); err != nil {
		t.Fatal(err)
	}
	local := string(hcl)
	for key, val := range map[string]string{
		"path":            raft,
		"address":         fmt.Sprintf("127.0.0.1:%d", port),
		"cluster_address": fmt.Sprintf("127.0.0.1:%d", cport),
		"api_addr":        fmt.Sprintf("http://127.0.0.1:%d", port),
		"cluster_addr":    fmt.Sprintf("http://127.0.0.1:%d", cport),
	} {
		re := regexp.MustCompile(`(?m)^(\s*` + key + `\s*=\s*)"[^"]*"`)
		if n := len(re.FindAllString(local, -1)); n != 1 {
			t.Fatalf("vault.hcl: %d %s settings, want 1 (the test rewrites it)", n, key)
		}
		local = re.ReplaceAllString(local, `${1}"`+strings.ReplaceAll(val, "$", "$$")+`"`)
	}
	cfg := filepath.Join(st.dir, "vault.hcl")
	if err := os.WriteFile(cfg, []byte(local), 0o600); err != nil {
		t.Fatal(err)
	}
	st.v = &Vault{Addr: fmt.Sprintf("http://127.0.0.1:%d", port), t: t, args: []string{"server", "-config=" + cfg}}
	st.v.start()
	t.Cleanup(st.v.Stop)
}

// bootstrap runs vault-bootstrap: the image's ENTRYPOINT is aion-exec,
// command its args. It returns the service's working directory, where
// .vault/ and .env.vault.dev are, and a root client.
func (st *exStack) bootstrap() (string, *api.Client) {
	t := st.t
	svc := st.service("vault-bootstrap")
	boot := st.proc("vault-bootstrap", true)
	workdir, ok := boot.resolve(svc.WorkingDir)
	if !ok {
		t.Fatalf("vault-bootstrap: working_dir %s is on no volume: .vault/ and .env.vault.dev would be lost", svc.WorkingDir)
	}
	r := aionIn(t, workdir, boot.hostEnv(t, st.v.Addr, st.vaultHosts), svc.Command...)
	if r.Code != 0 {
		t.Fatalf("vault-bootstrap `aion-exec %s` exited %d\nstdout:\n%s\nstderr:\n%s\nvault:\n%s", strings.Join(svc.Command, " "), r.Code, r.Stdout, r.Stderr, st.v.log)
	}
	exNoTypos(t, "vault-bootstrap", r)
	for _, f := range []string{".vault/dev-unseal.json", ".env.vault.dev"} {
		assertMode(t, filepath.Join(workdir, f), 0o600)
	}
	return workdir, vaultClient(t, st.v.Addr, unsealRoot(t, workdir))
}

// vaultConfig runs vault-config's entrypoint, a shell script, with the
// vault CLI of the pinned release on PATH: twice, then with arguments. It
// returns the db-main and minio secrets it leaves.
func (st *exStack) vaultConfig(workdir string, root *api.Client) (db, minio *api.KVSecret) {
	t := st.t
	kv := root.KVv2("secret")
	ctx := context.Background()
	dbBefore, err := kv.Get(ctx, "aionos/dev/db-main")
	if err != nil {
		t.Fatal(err)
	}
	if dbBefore.Data["host"] != "127.0.0.1" {
		t.Logf("note: dev bootstrap seeded db-main host %v", dbBefore.Data["host"])
	}
	cfgSvc := st.proc("vault-config", false)
	entry := st.service("vault-config").Entrypoint
	if len(entry) != 2 || path.Base(entry[0]) != "sh" {
		t.Fatalf("vault-config: entrypoint %v; the test expects [/bin/sh SCRIPT]", entry)
	}
	script, ok := cfgSvc.resolve(entry[1])
	if !ok {
		t.Fatalf("vault-config: %s is on no volume", entry[1])
	}
	drop := []string{}
	if os.Geteuid() != 0 {
		drop = append(drop, "TOKEN_OWNER") // chown needs root
	}
	shEnv := append(cfgSvc.hostEnv(t, st.v.Addr, st.vaultHosts, drop...),
		"PATH="+filepath.Dir(vaultBin)+string(os.PathListSeparator)+os.Getenv("PATH"), "HOME="+t.TempDir())
	r := runIn(t, st.dir, shEnv, "sh", script)
	if r.Code != 0 {
		t.Fatalf("vault-config exited %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	t.Logf("vault-config:\n%s", r.Stdout)
	if db, err = kv.Get(ctx, "aionos/dev/db-main"); err != nil {
		t.Fatal(err)
	}
	if minio, err = kv.Get(ctx, "aionos/dev/minio"); err != nil {
		t.Fatal(err)
	}
	if db.Data["host"] != "postgres" || minio.Data["endpoint"] != "minio:9000" {
		t.Errorf("after vault-config: db-main host %v, minio endpoint %v; want postgres and minio:9000", db.Data["host"], minio.Data["endpoint"])
	}
	if db.Data["password"] != dbBefore.Data["password"] || db.Data["port"] != dbBefore.Data["port"] {
		t.Error("vault-config changed more of db-main than its host")
	}
	tokenFile, ok := cfgSvc.resolve(cfgSvc.env["TOKEN_DIR"] + "/token")
	if !ok {
		t.Fatal("vault-config: TOKEN_DIR is on no volume")
	}
	assertMode(t, tokenFile, 0o400)
	envVars := sourceEnvFile(t, filepath.Join(workdir, ".env.vault.dev"))
	if b, _ := os.ReadFile(tokenFile); strings.TrimSpace(string(b)) != envVars["AION_VAULT_TOKEN"] {
		t.Error("the token file does not hold .env.vault.dev's token")
	}
	for _, secret := range []string{unsealRoot(t, workdir), envVars["AION_VAULT_TOKEN"], fmt.Sprint(db.Data["password"])} {
		if strings.Contains(r.Stdout+r.Stderr, secret) {
			t.Error("vault-config prints a token or a password")
		}
	}
	st.vaultConfigAgain(root, shEnv, script, tokenFile)
	return db, minio
}

// vaultConfigAgain: a second run of vault-config changes nothing; with
// arguments it runs a vault command with the root token (README.md).
func (st *exStack) vaultConfigAgain(root *api.Client, shEnv []string, script, tokenFile string) {
	t := st.t
	versions := kvVersions(t, root)
	tokenStat, _ := os.Stat(tokenFile)
	r := runIn(t, st.dir, shEnv, "sh", script)
	if r.Code != 0 {
		t.Fatalf("vault-config, second run, exited %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	if got := kvVersions(t, root); !maps.Equal(got, versions) {
		t.Errorf("vault-config's second run wrote secrets: %v, was %v", got, versions)
	}
	if fi, _ := os.Stat(tokenFile); !os.SameFile(fi, tokenStat) {
		t.Error("vault-config's second run replaced an unchanged token file (aion-exec would log in again)")
	}
	r = runIn(t, st.dir, shEnv, "sh", script, "kv", "get", "-mount=secret", "-field=host", "aionos/dev/db-main")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "postgres" {
		t.Errorf("vault-config kv get: exit %d, %q; want postgres\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
}

// renderInit runs render-init's `aion-exec once` into the rendered volume:
// the files hold Vault's values.
func (st *exStack) renderInit(db, minio *api.KVSecret) {
	t := st.t
	render := st.proc("render-init", true)
	args := st.service("render-init").Command
	if !slices.Equal(args, []string{"once"}) {
		t.Errorf("render-init: command %v, want [once]", args)
	}
	r := aionIn(t, st.dir, render.hostEnv(t, st.v.Addr, st.vaultHosts), args...)
	if r.Code != 0 {
		t.Fatalf("render-init `aion-exec once` exited %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	exNoTypos(t, "render-init", r)
	renderDir, _ := render.resolve(render.env["AION_RENDER_DIR"])
	want := map[string]any{
		"postgres-password":   db.Data["password"],
		"minio-root-user":     minio.Data["access_key"],
		"minio-root-password": minio.Data["secret_key"],
	}
	for name, val := range want {
		p := filepath.Join(renderDir, name)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("render-init did not render %s: %v", name, err)
			continue
		}
		if string(b) != fmt.Sprint(val) {
			t.Errorf("render-init's %s is not the value in Vault (%d bytes)", name, len(b))
		}
		assertMode(t, p, 0o600)
	}
}

// readers: every *_FILE that postgres and minio are given is a file
// render-init wrote (relative names are under /run/secrets, as both images
// read them), in the volume they mount read-only.
func (st *exStack) readers() {
	t := st.t
	renderVolume := ""
	renderDir := st.service("render-init").Environment["AION_RENDER_DIR"]
	for _, m := range st.service("render-init").Mounts {
		if m.Type == "volume" && m.Target == renderDir {
			renderVolume = m.Source
		}
	}
	for _, name := range []string{"postgres", "minio"} {
		p := st.proc(name, false)
		files := 0
		for _, k := range slices.Sorted(maps.Keys(p.env)) {
			if !strings.HasSuffix(k, "_FILE") {
				continue
			}
			cpath := p.env[k]
			if !path.IsAbs(cpath) {
				cpath = path.Join("/run/secrets", cpath)
			}
			host, ok := p.resolve(cpath)
			if !ok || !strings.HasPrefix(host, st.volumes[renderVolume]+string(filepath.Separator)) {
				t.Errorf("service %s: %s=%s is not in the volume render-init writes (%s)", name, k, p.env[k], renderVolume)
				continue
			}
			if _, err := os.Stat(host); err != nil {
				t.Errorf("service %s: %s=%s: render-init did not write it", name, k, p.env[k])
			}
			files++
		}
		if files == 0 {
			t.Errorf("service %s reads no credentials file from render-init", name)
		}
		for _, m := range st.service(name).Mounts {
			if m.Source == renderVolume && !m.ReadOnly {
				t.Errorf("service %s mounts %s read-write; it only reads it", name, renderVolume)
			}
		}
	}
}

// runService runs the Node service's container: the image's ENV under
// compose's environment, the image's files, its volumes and tmpfs;
// aion-exec, its ENTRYPOINT, runs a stand-in for node.
func (st *exStack) runService(db *api.KVSecret) {
	t := st.t
	svc := st.proc("service", true)
	entrypoint := st.top.image(t, "service", st.service("service").Image).Entrypoint
	if len(entrypoint) < 2 || path.Base(entrypoint[0]) != "aion-exec" {
		t.Fatalf("service image: ENTRYPOINT %v is not aion-exec", entrypoint)
	}
	r := aionIn(t, st.dir, svc.hostEnv(t, st.v.Addr, st.vaultHosts), append(slices.Clone(entrypoint[1:]), "sh", "-c", exChildScript)...)
	if r.Code != 0 {
		t.Fatalf("service: aion-exec exited %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	exNoTypos(t, "service", r)
	childEnv, creds := exChildOutput(t, r.Stdout)
	for k, want := range map[string]string{"PGHOST": "postgres", "PGPORT": "5432", "PGDATABASE": "aionos", "PORT": "8080"} {
		if childEnv[k] != want {
			t.Errorf("service: node would get %s=%q, want %q", k, childEnv[k], want)
		}
	}
	svcRender, _ := svc.resolve(svc.env["AION_RENDER_DIR"])
	if childEnv["AION_DB_CREDENTIALS_FILE"] != filepath.Join(svcRender, "db-credentials.json") {
		t.Errorf("service: AION_DB_CREDENTIALS_FILE=%s, want db-credentials.json in the tmpfs %s", childEnv["AION_DB_CREDENTIALS_FILE"], svcRender)
	}
	if creds["username"] != db.Data["username"] || creds["password"] != db.Data["password"] {
		t.Error("service: db-credentials.json does not hold Vault's username and password")
	}
}
