package supervise

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/aionos/aion-exec/internal/sysexits"
)

// The test binary is also every child these tests supervise: TestMain runs
// the helper that AION_SUPERVISE_HELPER names instead of the tests, as
// os/exec's tests do. Children report on stdout, one line each (like
// dumb-init's print_signals), and tests read lines instead of sleeping.
const helperVar = "AION_SUPERVISE_HELPER"

// secret is in every child's environment; it must never reach a log or error.
const secret = "AION_SUPERVISE_SECRET=hunter2-never-log-me"

var helpers = map[string]func(){
	"exit":       helperExit,
	"child":      helperChild,
	"orphan":     helperOrphan,
	"pid1":       helperPID1,
	"supervisor": helperSupervisor,
}

var helperUsed sync.Map

// The parent-death signal is a thread's, not the process's: the kernel
// gives it to the thread that exec'd (the main one) and clears it for every
// thread created later. The helpers answer "pid" with prctl from the main
// goroutine, which therefore stays on the main thread; on another thread
// prctl says 0 (a flaky TestParentDeath under load).
func init() { runtime.LockOSThread() }

func TestMain(m *testing.M) {
	if name := os.Getenv(helperVar); name != "" {
		h, ok := helpers[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown helper %q\n", name)
			os.Exit(2)
		}
		h()
		os.Exit(0)
	}
	code := m.Run()
	if publicDir != "" {
		os.RemoveAll(publicDir)
	}
	if code == 0 && flag.Lookup("test.run").Value.String() == "" && !testing.Short() {
		for name := range helpers {
			if _, ok := helperUsed.Load(name); !ok {
				fmt.Fprintf(os.Stderr, "helper %q is never used\n", name)
				code = 1
			}
		}
	}
	os.Exit(code)
}

// helperEnv is the entire environment of a child running helper name. With
// -race, a child would otherwise sleep a second as it exits.
func helperEnv(name string, kv ...string) []string {
	helperUsed.Store(name, true)
	return append([]string{helperVar + "=" + name, secret, "GORACE=atexit_sleep_ms=0"}, kv...)
}

// orphansCmd asks a "child" helper to leave n orphaned grandchildren that
// exit at once; with exit >= 0 the child exits with it right away.
func orphansCmd(n, exit int) string {
	helperUsed.Store("orphan", true)
	helperUsed.Store("exit", true)
	if exit >= 0 {
		return fmt.Sprintf("orphans %d %d", n, exit)
	}
	return fmt.Sprintf("orphans %d", n)
}

var (
	publicOnce sync.Once
	publicDir  string // holds publicSelf
	publicErr  error
)

// publicSelf is a copy of the test binary that any user may execute, for
// children that run as another user: the test binary's own directory is
// root's alone.
func publicSelf(t *testing.T) string {
	t.Helper()
	publicOnce.Do(func() {
		publicDir, publicErr = os.MkdirTemp("", "supervise-public-")
		if publicErr == nil {
			publicErr = os.Chmod(publicDir, 0o755)
		}
		if publicErr != nil {
			return
		}
		var b []byte
		if b, publicErr = os.ReadFile(self()); publicErr == nil {
			publicErr = os.WriteFile(filepath.Join(publicDir, "supervise.test"), b, 0o755)
		}
	})
	if publicErr != nil {
		t.Fatal(publicErr)
	}
	return filepath.Join(publicDir, "supervise.test")
}

func self() string {
	exe, err := os.Executable()
	if err != nil {
		panic(err)
	}
	return exe
}

// helperExit exits with HELPER_CODE at once.
func helperExit() {
	code, _ := strconv.Atoi(os.Getenv("HELPER_CODE"))
	os.Exit(code)
}

// catchable are the signals a "child" helper prints with HELPER_CATCH=std.
// With HELPER_CATCH=all it also prints those supervise must not forward
// when os/signal delivers them (SIGPIPE: aion-exec's own); with
// HELPER_CATCH=every, every signal that can be caught, through the
// catcher too.
var (
	catchable = []os.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2,
		syscall.SIGALRM, syscall.SIGTERM, syscall.SIGCONT, syscall.SIGWINCH, syscall.Signal(40)}
	neverForwarded = []os.Signal{syscall.SIGCHLD, syscall.SIGURG, syscall.SIGPIPE}
	// faults are what the Go runtime treats as a crash unless caught; with
	// HELPER_CATCH=faults a child prints them and the catchable ones.
	faults = []os.Signal{syscall.SIGABRT, syscall.SIGILL, syscall.SIGTRAP, syscall.SIGBUS, syscall.SIGFPE, syscall.SIGSEGV, syscall.SIGSYS}
)

// everySignal lists the signals that os/signal can catch and the
// supervisor forwards: all but SIGKILL, SIGSTOP, SIGCHLD, SIGURG and those
// of the catcher.
func everySignal() []os.Signal {
	var sigs []os.Signal
	for sig := syscall.Signal(1); sig <= 64; sig++ {
		if forwarded(sig) {
			sigs = append(sigs, sig)
		}
	}
	return sigs
}

func sigName(sig os.Signal) string {
	n, ok := sig.(syscall.Signal)
	if c, isCaught := sig.(caught); isCaught {
		n, ok = syscall.Signal(c), true
	}
	if !ok {
		return sig.String()
	}
	if name := unix.SignalName(n); name != "" {
		return name
	}
	return fmt.Sprintf("SIG%d", int(n))
}

// helperChild prints "<role> ready gen=<GEN>", then "<role> signal <NAME>"
// for each signal it catches (HELPER_CATCH), exiting with the code in
// HELPER_EXIT_ON ("SIGTERM 0") on that signal, after its own children. It
// obeys commands on stdin, and exits 0 when stdin ends:
//
//	exit N          exit with N
//	ping            print "<role> pong"
//	pid             print "<role> pid PID pdeathsig N"
//	print A [B...]  write A, then each B, in writes of their own, and a newline
//	eprint A        write A and no newline to stderr
//	ids             print "<role> ids uid=U gid=G groups=[...] home=H"
//	parent          print "<role> parent environ E mem M", each "ok" or
//	                "ok+secret" (the parent's environ holds secret) or the error
//	spawn ROLE      start a grandchild like itself, in its process group
//	orphans N [M]   leave N orphans (see orphansCmd), print "<role> orphans PID..."
//	                or, with M, exit with M right away
func helperChild() {
	role := cmp.Or(os.Getenv("HELPER_ROLE"), "child")
	say := func(format string, args ...any) {
		fmt.Printf(role+" "+format+"\n", args...) // one write: lines never interleave
	}
	var (
		mu      sync.Mutex
		spawned []*exec.Cmd
		held    []*os.File // the write ends of the grandchildren's stdin
	)
	if what := os.Getenv("HELPER_CATCH"); what != "" {
		sigs := catchable
		switch what {
		case "all":
			sigs = append(slices.Clone(sigs), neverForwarded...)
		case "faults":
			sigs = append(slices.Clone(sigs), faults...)
		case "every":
			sigs = everySignal()
		}
		var exitOn string
		var exitCode int
		if f := strings.Fields(os.Getenv("HELPER_EXIT_ON")); len(f) == 2 {
			exitOn, exitCode = f[0], atoi(f[1])
		}
		ch := make(chan os.Signal, 64)
		signal.Notify(ch, sigs...)
		if what == "every" {
			catch(ch)
		}
		go func() {
			for sig := range ch {
				say("signal %s", sigName(sig))
				if sigName(sig) == exitOn {
					mu.Lock()
					for _, c := range spawned {
						c.Wait()
					}
					os.Exit(exitCode)
				}
			}
		}()
	}
	say("ready gen=%s", os.Getenv("GEN"))
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "exit":
			os.Exit(atoi(f[1]))
		case len(f) == 1 && f[0] == "ping":
			say("pong")
		case len(f) == 1 && f[0] == "pid":
			if err := unix.Prctl(unix.PR_GET_PDEATHSIG, uintptr(unsafe.Pointer(&prctlOut)), 0, 0, 0); err != nil {
				panic(err)
			}
			say("pid %d pdeathsig %d", os.Getpid(), prctlOut)
		case len(f) >= 2 && f[0] == "print":
			for _, w := range f[1:] {
				os.Stdout.WriteString(w)
			}
			os.Stdout.WriteString("\n")
		case len(f) == 2 && f[0] == "eprint":
			os.Stderr.WriteString(f[1])
		case len(f) == 1 && f[0] == "ids":
			groups, err := syscall.Getgroups()
			if err != nil {
				panic(err)
			}
			slices.Sort(groups)
			say("ids uid=%d gid=%d groups=%v home=%s", os.Getuid(), os.Getgid(), groups, os.Getenv("HOME"))
		case len(f) == 1 && f[0] == "parent":
			say("parent environ %s mem %s", tryRead(fmt.Sprintf("/proc/%d/environ", os.Getppid())), tryRead(fmt.Sprintf("/proc/%d/mem", os.Getppid())))
		case len(f) == 2 && f[0] == "spawn":
			// The grandchild's stdin ends when this process does.
			r, w, err := os.Pipe()
			if err != nil {
				panic(err)
			}
			held = append(held, w)
			c := exec.Command(self())
			c.Env = append(os.Environ(), "HELPER_ROLE="+f[1])
			c.Stdin, c.Stdout, c.Stderr = r, os.Stdout, os.Stderr
			err = c.Start()
			r.Close()
			if err != nil {
				say("spawn failed: %v", err)
				continue
			}
			mu.Lock()
			spawned = append(spawned, c)
			mu.Unlock()
		case len(f) >= 2 && f[0] == "orphans":
			pids := orphans(atoi(f[1]))
			if len(f) == 3 {
				os.Exit(atoi(f[2]))
			}
			say("orphans %s", strings.Join(strings.Fields(string(readAll(pids))), " "))
		default:
			say("bad command %q", sc.Text())
		}
	}
	// Stdin ended: the test is over, or failed; never outlive it. With
	// HELPER_LINGER, stay a while yet, for a test that must see this
	// process killed rather than ended by its stdin.
	runtime.KeepAlive(held)
	if os.Getenv("HELPER_LINGER") != "" {
		<-time.After(timeout)
	}
}

// tryRead says whether path can be opened and read, and whether what it
// read holds secret.
func tryRead(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return strings.ReplaceAll(errors.Unwrap(err).Error(), " ", "-")
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	switch {
	case strings.Contains(string(b), secret):
		return "ok+secret"
	case err != nil && len(b) == 0 && strings.HasSuffix(path, "/mem"):
		return "ok" // opened; mem reads fail at address 0
	case err != nil:
		return strings.ReplaceAll(errors.Unwrap(err).Error(), " ", "-")
	}
	return "ok"
}

// orphans starts n "orphan" helpers and waits for them: each leaves a
// grandchild that exits at once, and prints its PID to the pipe returned.
func orphans(n int) *os.File {
	r, w, err := os.Pipe()
	if err != nil {
		panic(err)
	}
	for range n {
		c := exec.Command(self())
		c.Env = append(os.Environ(), helperVar+"=orphan")
		c.Stdout, c.Stderr = w, os.Stderr
		if err := c.Run(); err != nil {
			panic(err)
		}
	}
	w.Close()
	return r
}

// readAll reads r to its end: once all the orphans' copies of the pipe are
// closed, they have all exited.
func readAll(r *os.File) []byte {
	b, err := io.ReadAll(r)
	if err != nil {
		panic(err)
	}
	return b
}

// helperOrphan starts a grandchild that exits at once, prints its PID and
// exits without waiting for it, so the grandchild is re-parented.
func helperOrphan() {
	c := exec.Command(self())
	c.Env = append(os.Environ(), helperVar+"=exit", "HELPER_CODE=0")
	c.Stdout, c.Stderr = os.Stdout, os.Stderr
	if err := c.Start(); err != nil {
		panic(err)
	}
	fmt.Println(c.Process.Pid)
	os.Exit(0)
}

// helperPID1 runs as PID 1 of a new PID namespace (see TestPID1) and checks
// the two things only PID 1 can: that orphans of the child are reaped and
// leave no zombie, and that the child's own status is never stolen by that
// reaping. It prints "pid1 ok" or "pid1 fail: why".
func helperPID1() {
	fail := func(format string, args ...any) {
		fmt.Printf("pid1 fail: "+format+"\n", args...)
		os.Exit(1)
	}
	if os.Getpid() != 1 {
		fail("pid is %d, want 1", os.Getpid())
	}
	// The child exits while its orphans die around it: each time, Run must
	// still return the child's status. Run catches real signals here.
	for i := range 10 {
		p, err := launch(Options{Args: []string{self()}, Env: helperEnv("child")}, false, nil)
		if err != nil {
			fail("round %d: %v", i, err)
		}
		if err := p.expect("child ready gen="); err != nil {
			fail("round %d: %v", i, err)
		}
		p.send(orphansCmd(8, 5))
		if r, err := p.wait(); err != nil || r.code != 5 || r.err != nil {
			fail("round %d: run = %d, %v (%v); want 5, nil", i, r.code, r.err, err)
		}
		if err := p.close(); err != nil {
			fail("round %d: %v", i, err)
		}
	}

	p, err := launch(Options{Args: []string{self()}, Env: helperEnv("child", "HELPER_CATCH=std")}, false, nil)
	if err != nil {
		fail("%v", err)
	}
	if err := p.expect("child ready gen="); err != nil {
		fail("%v", err)
	}
	pids, err := p.orphans(5)
	if err != nil {
		fail("%v", err)
	}
	if err := p.awaitReaped(pids); err != nil {
		fail("%v", err)
	}
	if z := zombies(); len(z) > 0 {
		fail("zombies left: %s", strings.Join(z, ", "))
	}
	syscall.Kill(1, syscall.SIGUSR1) // a real signal, caught by Run and forwarded
	if err := p.expect("child signal SIGUSR1"); err != nil {
		fail("%v", err)
	}
	p.send("exit 3")
	if r, err := p.wait(); err != nil || r.code != 3 || r.err != nil {
		fail("run = %d, %v (%v); want 3, nil", r.code, r.err, err)
	}
	if err := p.close(); err != nil {
		fail("%v", err)
	}
	fmt.Println("pid1 ok")
}

// helperSupervisor is aion-exec in miniature: a Supervisor catching real
// signals, with its own stdio, for the helper that HELPER_SUPERVISE names
// and the rest of this environment, exiting with Run's status.
func helperSupervisor() {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, helperVar+"=") })
	env = append(env, helperVar+"="+os.Getenv("HELPER_SUPERVISE"))
	stop, _ := time.ParseDuration(os.Getenv("HELPER_STOP_TIMEOUT"))
	if os.Getenv("HELPER_HARDEN") != "" {
		if err := Harden(); err != nil {
			panic(err)
		}
	}
	var sigs chan os.Signal
	if os.Getenv("HELPER_EPIPE") != "" {
		// Catch first, then write to a pipe nobody reads: the kernel
		// raises SIGPIPE in this process, as for a broken stdout.
		sigs = make(chan os.Signal, 64)
		Notify(sigs)
		r, w, err := os.Pipe()
		if err != nil {
			panic(err)
		}
		r.Close()
		if _, err := w.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
			panic(fmt.Sprintf("write to a closed pipe: %v, want EPIPE", err))
		}
	}
	var user *User
	if spec := os.Getenv("HELPER_CHILD_USER"); spec != "" {
		var err error
		if user, err = LookupUser(spec); err != nil {
			fmt.Println("supervisor:", err) // to the test, which reads our stdout
			os.Exit(sysexits.Code(err))
		}
	}
	args := []string{self()}
	if cmd := os.Getenv("HELPER_SUPERVISE_CMD"); cmd != "" {
		args = strings.Fields(cmd)
	}
	code, err := New(Options{Args: args, Env: env, StopTimeout: stop, User: user, Signals: sigs}).Run(context.Background())
	if err != nil {
		fmt.Println("supervisor:", err)
	}
	os.Exit(code)
}

// supervisorEnv runs helper name under a "supervisor" helper.
func supervisorEnv(name string, kv ...string) []string {
	helperUsed.Store(name, true)
	return helperEnv("supervisor", append([]string{"HELPER_SUPERVISE=" + name}, kv...)...)
}

// zombies lists the processes in state Z, as "pid (comm)".
func zombies() []string {
	dirs, _ := os.ReadDir("/proc")
	var z []string
	for _, d := range dirs {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ...; comm may hold spaces and parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i > 0 && strings.HasPrefix(s[i+1:], " Z") {
			z = append(z, s[:i+1])
		}
	}
	return z
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}

// timeout bounds every wait in these tests. It is a failsafe, never how a
// test learns that something happened.
const timeout = 30 * time.Second

// proc is a Supervisor running in the background with its child's stdin,
// stdout, signals, start and log events wired to the test.
type proc struct {
	s      *Supervisor
	in     *os.File       // the child's stdin: commands
	out    *os.File       // read end of the child's stdout
	lines  chan string    // the child's stdout, a line at a time
	sigs   chan os.Signal // injected as Options.Signals; nil: Run catches real ones
	pids   chan int       // from OnStart
	log    *recorder
	cancel context.CancelFunc
	res    chan result
	done   *result
}

type result struct {
	code int
	err  error
}

// launch starts Run for opts. inject replaces real signals by p.sigs; before,
// if set, is called on the Supervisor before Run.
func launch(opts Options, inject bool, before func(*Supervisor)) (*proc, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	p := &proc{
		in: inW, out: outR,
		lines: make(chan string, 256),
		pids:  make(chan int, 64),
		log:   newRecorder(),
		res:   make(chan result, 1),
	}
	opts.Stdin, opts.Stdout = inR, outW
	if opts.StopTimeout == 0 {
		opts.StopTimeout = 2 * time.Second // a failed test need not wait 10s for a child that ignores SIGTERM
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	if inject {
		p.sigs = make(chan os.Signal, 16)
		opts.Signals = p.sigs
	}
	onStart := opts.OnStart
	opts.OnStart = func(pid int) {
		if onStart != nil {
			onStart(pid)
		}
		p.pids <- pid
	}
	opts.Logger = slog.New(p.log)
	p.s = New(opts)
	if before != nil {
		before(p.s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() {
		code, err := p.s.Run(ctx)
		inR.Close()
		outW.Close()
		p.res <- result{code, err}
	}()
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	return p, nil
}

func (p *proc) next() (string, error) {
	select {
	case l, ok := <-p.lines:
		if !ok {
			return "", errors.New("child output ended")
		}
		return l, nil
	case <-time.After(timeout):
		return "", fmt.Errorf("no line from the child in %v", timeout)
	}
}

// expect checks that the next lines are want, in order.
func (p *proc) expect(want ...string) error {
	for _, w := range want {
		got, err := p.next()
		if err != nil {
			return fmt.Errorf("want line %q: %w", w, err)
		}
		if got != w {
			return fmt.Errorf("got line %q, want %q", got, w)
		}
	}
	return nil
}

// expectSet checks that the next lines are want, in any order.
func (p *proc) expectSet(want ...string) error {
	left := slices.Clone(want)
	for range want {
		got, err := p.next()
		if err != nil {
			return fmt.Errorf("want lines %q: %w", left, err)
		}
		i := slices.Index(left, got)
		if i < 0 {
			return fmt.Errorf("got line %q, want one of %q", got, left)
		}
		left = slices.Delete(left, i, i+1)
	}
	return nil
}

// rest returns the lines left once the child's output ends.
func (p *proc) rest() ([]string, error) {
	var ls []string
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				return ls, nil
			}
			ls = append(ls, l)
		case <-time.After(timeout):
			return ls, fmt.Errorf("child output did not end in %v", timeout)
		}
	}
}

func (p *proc) send(cmd string) error {
	_, err := fmt.Fprintln(p.in, cmd)
	return err
}

func (p *proc) signal(sig os.Signal) { p.sigs <- sig }

func (p *proc) pid() (int, error) {
	select {
	case pid := <-p.pids:
		return pid, nil
	case <-time.After(timeout):
		return 0, fmt.Errorf("no child started in %v", timeout)
	}
}

// wait returns Run's result.
func (p *proc) wait() (result, error) { return p.waitFor(timeout) }

func (p *proc) waitFor(d time.Duration) (result, error) {
	if p.done != nil {
		return *p.done, nil
	}
	select {
	case r := <-p.res:
		p.done = &r
		return r, nil
	case <-time.After(d):
		return result{}, fmt.Errorf("run did not return in %v", d)
	}
}

// orphans has the child leave n orphans and returns their PIDs.
func (p *proc) orphans(n int) ([]int, error) {
	if err := p.send(orphansCmd(n, -1)); err != nil {
		return nil, err
	}
	l, err := p.next()
	if err != nil {
		return nil, err
	}
	f := strings.Fields(l)
	if len(f) != n+2 || f[1] != "orphans" {
		return nil, fmt.Errorf("got line %q, want %d orphan pids", l, n)
	}
	var pids []int
	for _, s := range f[2:] {
		pids = append(pids, atoi(s))
	}
	return pids, nil
}

// awaitReaped waits until supervise logged reaping each of pids, then
// checks that they are gone from /proc (a zombie is still there).
func (p *proc) awaitReaped(pids []int) error {
	left := slices.Clone(pids)
	deadline := time.After(timeout)
	for len(left) > 0 {
		select {
		case pid := <-p.log.reaped:
			left = slices.DeleteFunc(left, func(x int) bool { return x == pid })
		case <-deadline:
			return fmt.Errorf("orphans %v not reaped in %v", left, timeout)
		}
	}
	for _, pid := range pids {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("orphan %d reaped but still in /proc (stat: %v)", pid, err)
		}
	}
	return nil
}

// close ends Run (gracefully, if still running), releases the pipes and
// checks that the secret reached no log.
func (p *proc) close() error {
	p.in.Close() // a helper child still running exits now, even one ignoring SIGTERM
	p.cancel()
	_, err := p.wait()
	p.out.Close() // ends the reader even if an orphan kept the pipe open
	for range p.lines {
	}
	if strings.Contains(p.log.String(), secret) {
		err = errors.Join(err, errors.New("the child's environment reached the log"))
	}
	return err
}

// start is launch for a test: it fails the test on error and closes p when
// the test ends, showing supervise's log if the test failed.
func start(t *testing.T, opts Options, inject bool) *proc {
	t.Helper()
	return startWith(t, opts, inject, nil)
}

func startWith(t *testing.T, opts Options, inject bool, before func(*Supervisor)) *proc {
	t.Helper()
	p, err := launch(opts, inject, before)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.close(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("supervise log:\n%s", p.log)
		}
	})
	return p
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// recorder is a slog.Handler that keeps the text of every record and
// reports each orphan reaped.
type recorder struct {
	*recording
	h slog.Handler
}

type recording struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	reaped chan int
}

func newRecorder() *recorder {
	rec := &recording{reaped: make(chan int, 1024)}
	return &recorder{rec, slog.NewTextHandler(lockedWriter{rec}, &slog.HandlerOptions{Level: slog.LevelDebug})}
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *recorder) Handle(ctx context.Context, rec slog.Record) error {
	if rec.Message == "reaped orphan" {
		rec.Attrs(func(a slog.Attr) bool {
			if a.Key == "pid" {
				select {
				case r.reaped <- int(a.Value.Int64()):
				default:
				}
			}
			return true
		})
	}
	return r.h.Handle(ctx, rec)
}

func (r *recorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &recorder{r.recording, r.h.WithAttrs(as)}
}

func (r *recorder) WithGroup(name string) slog.Handler {
	return &recorder{r.recording, r.h.WithGroup(name)}
}

func (r *recording) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

type lockedWriter struct{ r *recording }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	return w.r.buf.Write(b)
}

// prctlOut is where prctl writes what it is asked for. A package variable,
// never a local: unix.Prctl is Go, not assembly, so a stack address passed
// to it as a uintptr goes stale if the call grows the goroutine's stack,
// and the kernel writes to where the variable was (a flaky 0 under load).
var prctlOut int32

// within polls cond, which reads the kernel's view of a process, until it
// holds or d has passed.
func within(d time.Duration, cond func() error) error {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.After(d)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		select {
		case <-tick.C:
		case <-deadline:
			return err
		}
	}
}

// exitedWithin waits up to d for the process behind pidfd fd to exit (a
// pidfd polls readable then), across the interruptions of the runtime's
// own signals.
func exitedWithin(fd int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(max(0, time.Until(deadline)).Milliseconds()))
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return err
		case n != 1:
			return fmt.Errorf("still running after %v", d)
		}
		return nil
	}
}
