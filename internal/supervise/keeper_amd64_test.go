package supervise

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func init() { helpers["keep"] = helperKeep }

// helperKeep watches a directory with inotify, as aion-exec's file
// watches do, starts the keeper, prints "keep ready PID", and exits when
// its stdin ends.
func helperKeep() {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		panic(err)
	}
	if _, err := unix.InotifyAddWatch(fd, os.TempDir(), unix.IN_CREATE); err != nil {
		panic(err)
	}
	Keep()
	fmt.Printf("keep ready %d\n", os.Getpid())
	bufio.NewScanner(os.Stdin).Scan()
}

// TestKeeper: the keeper holds the inotify instance and nothing else of
// its process's descriptors (not its stdout: a reader of that would see
// EOF only when the keeper is gone), blocks every signal, and exits after
// its process.
func TestKeeper(t *testing.T) {
	t.Parallel()
	p := start(t, Options{Args: []string{self()}, Env: helperEnv("keep")}, true)
	l, err := p.next()
	must(t, err)
	var pid int
	if _, err := fmt.Sscanf(l, "keep ready %d", &pid); err != nil {
		t.Fatalf("got %q: %v", l, err)
	}
	keeper, err := keeperOf(pid)
	must(t, err)
	must(t, within(time.Second, func() error {
		fds, err := linksOf(keeper)
		if err != nil {
			return err
		}
		if want := []string{"anon_inode:[pidfd]", "anon_inode:inotify"}; !slices.Equal(fds, want) {
			return fmt.Errorf("keeper %d holds %q, want %q", keeper, fds, want)
		}
		return nil
	}))
	if blk := statusField(t, keeper, "SigBlk"); blk != "fffffffffffbfeff" { // all but SIGKILL, SIGSTOP
		t.Errorf("keeper's SigBlk = %s, want every signal blocked", blk)
	}
	fd, err := unix.PidfdOpen(keeper, 0)
	must(t, err)
	defer unix.Close(fd)
	p.in.Close() // the helper exits
	if r, err := p.wait(); err != nil || r.code != 0 {
		t.Fatalf("helper: %+v, %v", r, err)
	}
	if err := exitedWithin(fd, 5*time.Second); err != nil {
		t.Fatalf("keeper %d after its process exited: %v", keeper, err)
	}
	// Reparented to us (a subreaper): reap it, unless our reaper did.
	unix.Wait4(keeper, nil, unix.WNOHANG, nil)
}

// keeperOf finds the keeper among the children of pid (each thread lists
// the children it made).
func keeperOf(pid int) (int, error) {
	var keeper int
	err := within(time.Second, func() error {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			return err
		}
		var children []string
		for _, task := range tasks {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
			children = append(children, strings.Fields(string(b))...)
		}
		for _, f := range children {
			k, _ := strconv.Atoi(f)
			if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", k)); strings.TrimSpace(string(comm)) == "aion-exec keep" {
				keeper = k
				return nil
			}
		}
		return fmt.Errorf("no child of %d is called \"aion-exec keep\" (children %q)", pid, children)
	})
	return keeper, err
}

// linksOf lists what the descriptors of pid point at, sorted.
func linksOf(pid int) ([]string, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var links []string
	for _, e := range ents {
		l, err := os.Readlink(dir + "/" + e.Name())
		if err != nil {
			return nil, err
		}
		links = append(links, l)
	}
	slices.Sort(links)
	return links, nil
}

func statusField(t *testing.T, pid int, name string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	must(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in /proc/%d/status", name, pid)
	return ""
}
