package supervise

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/aionos/aion-exec/internal/sysexits"
)

// User is whom the child runs as (Options.User), the way gosu and su-exec
// drop privileges: the child calls setgroups(Groups), setgid(Gid) and
// setuid(Uid), in that order, before exec.
type User struct {
	Spec     string // as given, for messages
	Uid, Gid uint32
	Groups   []uint32 // the supplementary groups, exactly; none clears them
	Home     string   // the child's HOME; see Options.User
}

func (u *User) String() string { return fmt.Sprintf("%s (%d:%d)", u.Spec, u.Uid, u.Gid) }

// LookupUser resolves spec, "user[:group]", each a name or a number, from
// /etc/passwd and /etc/group (files only, as in a container; no NSS):
//   - a user name gets its uid, primary gid and home from /etc/passwd, and
//     as supplementary groups the primary one and every group in
//     /etc/group that lists the name;
//   - a user number gets the primary gid and home of its /etc/passwd entry,
//     or, without one, its own number as gid and "/" as home, and no
//     supplementary groups: a number is taken as meant;
//   - a group, by name or number, replaces the gid, and the supplementary
//     groups are then none.
//
// It fails, with sysexits.NoPerm, when aion-exec could switch to the user
// only partly: not root, and the user or group is not its own.
func LookupUser(spec string) (*User, error) {
	u, err := lookupUser(spec, "/etc/passwd", "/etc/group")
	if err != nil {
		return nil, sysexits.Wrap(sysexits.Usage, err)
	}
	return u, u.check()
}

func lookupUser(spec, passwd, group string) (*User, error) {
	name, grp, hasGroup := strings.Cut(spec, ":")
	if name == "" || (hasGroup && grp == "") {
		return nil, fmt.Errorf("child user %q: want user[:group], each a name or a number", spec)
	}
	u := &User{Spec: spec, Home: "/"}
	pw, err := readColon(passwd, 7, func(f []string) bool { return f[0] == name || f[2] == name })
	if err != nil {
		return nil, fmt.Errorf("child user %s: %w", spec, err)
	}
	uid, numeric := parseID(name)
	switch {
	case pw != nil:
		u.Uid, _ = parseID(pw[2])
		u.Gid, _ = parseID(pw[3])
		u.Home = pw[5]
	case numeric:
		u.Uid, u.Gid = uid, uid
	default:
		return nil, fmt.Errorf("child user %s: no user %s in %s", spec, name, passwd)
	}
	if hasGroup {
		gid, err := lookupGroup(grp, group)
		if err != nil {
			return nil, fmt.Errorf("child user %s: %w", spec, err)
		}
		u.Gid = gid
		return u, nil
	}
	if !numeric {
		if u.Groups, err = memberOf(name, u.Gid, group); err != nil {
			return nil, fmt.Errorf("child user %s: %w", spec, err)
		}
	}
	return u, nil
}

func lookupGroup(grp, path string) (uint32, error) {
	if gid, ok := parseID(grp); ok {
		return gid, nil
	}
	f, err := readColon(path, 4, func(f []string) bool { return f[0] == grp })
	if err != nil {
		return 0, err
	}
	if f == nil {
		return 0, fmt.Errorf("no group %s in %s", grp, path)
	}
	gid, _ := parseID(f[2])
	return gid, nil
}

// memberOf lists gid and the groups that name is a member of.
func memberOf(name string, gid uint32, path string) ([]uint32, error) {
	groups := []uint32{gid}
	_, err := readColon(path, 4, func(f []string) bool {
		if id, ok := parseID(f[2]); ok && slices.Contains(strings.Split(f[3], ","), name) && !slices.Contains(groups, id) {
			groups = append(groups, id)
		}
		return false
	})
	return groups, err
}

// readColon returns the first line of path, split at colons into n fields,
// for which match is true; nil when none is.
func readColon(path string, n int, match func([]string) bool) ([]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // an image without /etc/passwd knows no names
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) >= n && !strings.HasPrefix(fields[0], "#") && match(fields) {
			return fields, nil
		}
	}
	return nil, sc.Err()
}

func parseID(s string) (uint32, bool) {
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil
}

// check refuses a partial drop: only root can switch to another user or
// group; aion-exec as that user and group already runs the child as is.
func (u *User) check() error {
	if os.Geteuid() == 0 || (u.Uid == uint32(os.Geteuid()) && u.Gid == uint32(os.Getegid())) {
		return nil
	}
	return sysexits.Wrap(sysexits.NoPerm, fmt.Errorf("child user %s: aion-exec runs as uid %d gid %d, not as root, and cannot switch to it; run aion-exec as root or leave the child user unset",
		u, os.Geteuid(), os.Getegid()))
}

// credential is what the child's fork does for u; nil when nothing.
func (u *User) credential() *syscall.Credential {
	if u == nil || os.Geteuid() != 0 {
		return nil // check passed: the child is aion-exec's own user
	}
	return &syscall.Credential{Uid: u.Uid, Gid: u.Gid, Groups: slices.Clone(u.Groups)}
}

// withHome gives the child u's home as HOME, as gosu does, unless env
// sets a HOME of its own, other than the one aion-exec inherited.
func (u *User) withHome(env []string) []string {
	if u == nil {
		return env
	}
	ours, inherited := os.LookupEnv("HOME")
	i := slices.IndexFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "HOME=") })
	if i >= 0 && (!inherited || env[i] != "HOME="+ours) {
		return env
	}
	env = slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, "HOME=") })
	return append(env, "HOME="+u.Home)
}

// Harden marks aion-exec non-dumpable. Processes of its own uid, the child
// first, can then no longer read its /proc/PID/environ (the Vault
// credentials it was started with) or mem, nor ptrace it, and no core dump
// of it holds a secret. aion-exec itself still reads its own /proc/self.
// Exec makes the child dumpable again. Call it first thing in main.
func Harden() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("mark aion-exec non-dumpable: %w", err)
	}
	return nil
}
