//go:build integration

package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Postgres is one PostgreSQL cluster started from Debian's server binaries
// on a free loopback port, as the postgres user when we are root (initdb
// refuses to run as root).
type Postgres struct {
	Port  int
	dir   string
	bin   string
	t     testing.TB
	admin string // the password of vault-admin, once vaultAdmin made it
}

func pgBinDir(t testing.TB) string {
	t.Helper()
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(m) == 0 {
		t.Fatal("PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install postgresql; .ci/run does)")
	}
	return filepath.Dir(m[len(m)-1])
}

// asPostgres runs a PostgreSQL binary, dropping to the postgres user when
// we are root.
func (p *Postgres) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(p.bin, name), args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			p.t.Fatalf("running as root needs a postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	return cmd
}

// startPostgres initialises and starts a cluster; password logins over TCP
// (scram), trust over its private Unix socket for the test's own psql.
func startPostgres(t testing.TB) *Postgres {
	t.Helper()
	dir, err := os.MkdirTemp("", "aion-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := &Postgres{Port: freePort(t), dir: dir, bin: pgBinDir(t), t: t}
	if os.Geteuid() == 0 {
		u, _ := user.Lookup("postgres")
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := p.command("initdb", "-D", data, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	cmd := p.command("postgres", "-D", data, "-p", strconv.Itoa(p.Port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=50")
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT) // fast shutdown
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	eventually(t, "postgres accepting connections", 30*time.Second, func() error {
		select {
		case <-exited:
			t.Fatalf("postgres exited:\n%s", log.String())
		default:
		}
		_, err := p.psqlErr("select 1")
		return err
	})
	return p
}

// psql runs sql as the superuser over the Unix socket.
func (p *Postgres) psql(sql string) string {
	p.t.Helper()
	out, err := p.psqlErr(sql)
	if err != nil {
		p.t.Fatalf("psql %q: %v", sql, err)
	}
	return out
}

func (p *Postgres) psqlErr(sql string) (string, error) {
	return p.run(p.command("psql", "-h", p.dir, "-p", strconv.Itoa(p.Port), "-U", "postgres", "-d", "postgres",
		"-v", "ON_ERROR_STOP=1", "-At", "-c", sql))
}

// psqlAs runs sql as user with password over TCP, the way a service logs in.
func (p *Postgres) psqlAs(user, password, sql string) (string, error) {
	cmd := p.command("psql", "-h", "127.0.0.1", "-p", strconv.Itoa(p.Port), "-U", user, "-d", "postgres", "-w",
		"-v", "ON_ERROR_STOP=1", "-At", "-c", sql)
	cmd.Env = append(cmd.Env, "PGPASSWORD="+password)
	return p.run(cmd)
}

func (p *Postgres) run(cmd *exec.Cmd) (string, error) {
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%v: %s", err, out)
	}
	return string(bytes.TrimSpace(out)), nil
}

// vaultAdmin is the superuser Vault's database plugin connects as, made
// on first use.
func (p *Postgres) vaultAdmin() (user, password string) {
	p.t.Helper()
	if p.admin == "" {
		p.admin = fmt.Sprintf("admin-%d", time.Now().UnixNano())
		p.psql("create role \"vault-admin\" login superuser password " + sqlString(p.admin))
	}
	return "vault-admin", p.admin
}

// sqlString quotes s as an SQL string literal.
func sqlString(s string) string {
	return "'" + string(bytes.ReplaceAll([]byte(s), []byte("'"), []byte("''"))) + "'"
}
