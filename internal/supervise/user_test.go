package supervise

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aionos/aion-exec/internal/sysexits"
)

func TestLookupUser(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	passwd, group := filepath.Join(dir, "passwd"), filepath.Join(dir, "group")
	must(t, os.WriteFile(passwd, []byte("root:x:0:0:root:/root:/bin/sh\n# a comment\napp:x:1000:1000::/home/app:/bin/sh\nsvc:x:1001:1001::/srv:/bin/sh\n"), 0o644))
	must(t, os.WriteFile(group, []byte("root:x:0:\napp:x:1000:\nssl:x:103:svc,app\ndocker:x:999:app\nsvc:x:1001:\n"), 0o644))
	tests := []struct {
		spec string
		want *User // nil: an error
	}{
		{"app", &User{Uid: 1000, Gid: 1000, Groups: []uint32{1000, 103, 999}, Home: "/home/app"}},
		{"svc", &User{Uid: 1001, Gid: 1001, Groups: []uint32{1001, 103}, Home: "/srv"}},
		{"1000", &User{Uid: 1000, Gid: 1000, Home: "/home/app"}},
		{"4242", &User{Uid: 4242, Gid: 4242, Home: "/"}},
		{"app:ssl", &User{Uid: 1000, Gid: 103, Home: "/home/app"}},
		{"app:7", &User{Uid: 1000, Gid: 7, Home: "/home/app"}},
		{"4242:docker", &User{Uid: 4242, Gid: 999, Home: "/"}},
		{"nobody", nil},
		{"app:nogroup", nil},
		{"", nil},
		{"app:", nil},
		{":app", nil},
	}
	for _, tt := range tests {
		got, err := lookupUser(tt.spec, passwd, group)
		if tt.want == nil {
			if err == nil {
				t.Errorf("lookupUser(%q) = %+v, want an error", tt.spec, got)
			}
			continue
		}
		tt.want.Spec = tt.spec
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("lookupUser(%q) = %+v, %v; want %+v", tt.spec, got, err, tt.want)
		}
	}
	if u, err := LookupUser("nobody"); err != nil || u.Uid != 65534 {
		t.Errorf("LookupUser(nobody) = %+v, %v; want uid 65534 from /etc/passwd", u, err)
	}
}

func TestChildHome(t *testing.T) {
	t.Parallel()
	u := &User{Home: "/home/app"}
	ours := "HOME=" + os.Getenv("HOME")
	for _, tt := range []struct{ env, want []string }{
		{[]string{"A=1"}, []string{"A=1", "HOME=/home/app"}},
		{[]string{ours, "A=1"}, []string{"A=1", "HOME=/home/app"}},
		{[]string{"HOME=/app", "A=1"}, []string{"HOME=/app", "A=1"}},
	} {
		if got := u.withHome(tt.env); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("withHome(%q) = %q, want %q", tt.env, got, tt.want)
		}
	}
}

// TestChildUser: the child gets exactly the user's ids and groups.
func TestChildUser(t *testing.T) {
	t.Parallel()
	u := &User{Spec: "test", Uid: 65534, Gid: 65534, Groups: []uint32{65534, 4242}, Home: "/nonexistent"}
	p := start(t, Options{Args: []string{publicSelf(t)}, Env: helperEnv("child", "HOME=/root"), User: u}, true)
	must(t, p.expect("child ready gen="))
	must(t, p.send("ids"))
	must(t, p.expect("child ids uid=65534 gid=65534 groups=[4242 65534] home=/nonexistent"))
}

// asNobody runs the "supervisor" helper as uid and gid 65534 with no
// groups, as an unprivileged aion-exec would run.
func asNobody(t *testing.T, env []string) *proc {
	return start(t, Options{
		Args: []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", publicSelf(t)},
		Env:  env,
	}, true)
}

// TestHarden: a child of aion-exec's own uid cannot read aion-exec's
// environment or memory once Harden was called, and can without it.
func TestHarden(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		harden bool
		want   string
	}{
		{false, "child parent environ ok+secret mem ok"},
		{true, "child parent environ permission-denied mem permission-denied"},
	} {
		env := supervisorEnv("child")
		if tt.harden {
			env = append(env, "HELPER_HARDEN=1")
		}
		p := asNobody(t, env)
		must(t, p.expect("child ready gen="))
		must(t, p.send("ids"))
		must(t, p.expect("child ids uid=65534 gid=65534 groups=[] home="))
		must(t, p.send("parent"))
		must(t, p.expect(tt.want))
		must(t, p.send("exit 0"))
		if r, err := p.wait(); err != nil || r.code != 0 {
			t.Errorf("supervisor (harden %v) = %d, %v; want 0", tt.harden, r.code, err)
		}
	}
}

// TestChildUserRefused: not root, aion-exec refuses to start a child it
// could switch to another user only in part.
func TestChildUserRefused(t *testing.T) {
	t.Parallel()
	p := asNobody(t, supervisorEnv("child", "HELPER_CHILD_USER=0"))
	r, err := p.wait()
	must(t, err)
	lines, err := p.rest()
	must(t, err)
	if r.code != sysexits.NoPerm || len(lines) != 1 || !strings.Contains(lines[0], "child user 0 (0:0): aion-exec runs as uid 65534 gid 65534, not as root") {
		t.Errorf("supervisor = %d, output %q; want 77 and why", r.code, lines)
	}
}
