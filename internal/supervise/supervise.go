// Package supervise runs the service that aion-exec wraps, the way tini does:
// it starts the child, forwards the signals aion-exec receives, reaps every
// zombie that ends up with aion-exec (as PID 1, or as a child subreaper
// otherwise) and reports the child's exit status. When secrets change it
// reloads the child (sends it a signal) or restarts it with a new environment.
//
// What it guarantees (docs/supervise.md says why):
//   - every signal that can be caught is forwarded but SIGCHLD and SIGURG,
//     and none of them ends aion-exec (job control stops it after the
//     child, as it would without us); a stop signal (SIGTERM, SIGINT,
//     SIGQUIT, StopSignal) is followed by SIGKILL after StopTimeout, as are
//     restarts and the end of Run's context;
//   - the child never outlives aion-exec: it gets SIGKILL as its
//     parent-death signal, from a thread that lives as long as it does;
//   - the child starts with the signal mask and ignored signals aion-exec
//     started with (all of them when linked with EntrySymbol);
//   - an environment too large for exec is refused before any fork, naming
//     the variables (CheckArgSize);
//   - with Options.User the child runs as that user, or not at all; with
//     Options.Mask its output has the secrets concealed.
//
// It must never log or return the child's environment or arguments: they hold
// secrets. Logs and errors name the program (argv[0]) and process IDs only.
//
// While a Supervisor runs, this package is the process's only waiter for
// child processes: it reaps with wait4(-1), which would steal the exit status
// from anything else in the process that starts and waits for a child
// (os/exec), so nothing else may do so meanwhile.
package supervise

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aionos/aion-exec/internal/sysexits"
)

// Options describe the child and how to stop it.
type Options struct {
	// Args is the command line. Args[0] is the program: without a slash it
	// is looked up in the PATH of Env (aion-exec's PATH when Env has none),
	// as a shell would, and is passed to the program unchanged as argv[0].
	Args []string
	// Env is the child's entire environment. nil means an empty one: the
	// child never inherits aion-exec's environment implicitly, as that holds
	// Vault credentials.
	Env []string
	// Stdin, Stdout and Stderr are handed to the child as descriptors, so a
	// terminal stays a terminal (Stdout and Stderr unless Mask). nil means
	// aion-exec's own.
	Stdin, Stdout, Stderr *os.File
	// StopSignal asks the child to stop, for a restart or when Run's context
	// ends; SIGTERM when zero. After StopTimeout (10s when zero) the child
	// gets SIGKILL.
	StopSignal  syscall.Signal
	StopTimeout time.Duration
	// Group starts the child in a process group of its own (which takes
	// over the terminal's foreground if aion-exec had it, like tini) and
	// sends every signal to that whole group, like tini -g.
	Group bool
	// Mask makes the child's stdout and stderr pipes that aion-exec copies
	// to Stdout and Stderr with every value given to Conceal replaced by
	// <concealed:NAME>, as 1Password's op run does. The child then writes
	// to no terminal, so it is off unless asked for.
	Mask bool
	// User, when set, is whom the child runs as; see LookupUser. Its HOME
	// becomes User.Home, unless Env sets a HOME other than aion-exec's own.
	User *User
	// Logger gets one line per child start, exit, restart and kill. nil
	// discards.
	Logger *slog.Logger
	// Signals, when set, replaces the signals aion-exec receives: a test
	// seam, and how main hands over the channel it gave Notify early. When
	// nil, Run catches them itself (and its signal.Stop at the end costs
	// ~1-2 ms). What is forwarded: see forwarded, catch.go and
	// docs/supervise.md.
	Signals <-chan os.Signal
	// OnStart, when set, is called from Run with the PID of each child it
	// starts, before anything is sent to that child. It must not block.
	OnStart func(pid int)
}

// Supervisor owns one child at a time. Run is its only goroutine; Reload and
// Restart leave requests in a mailbox that Run empties, so they never block
// and are safe from any goroutine.
type Supervisor struct {
	opts Options
	log  *slog.Logger
	wake chan struct{} // holds a token while the mailbox may hold requests

	mu      sync.Mutex
	state   int // idle, running or finished
	reloads []syscall.Signal
	env     []string // the newest environment a Restart asked for
	restart bool

	values atomic.Pointer[matcher] // for Mask
}

const (
	idle = iota
	running
	finished
)

// New returns a Supervisor for opts, with the defaults filled in.
func New(opts Options) *Supervisor {
	opts.Args = slices.Clone(opts.Args)
	opts.Env = slices.Clone(opts.Env)
	if opts.Stdin == nil {
		opts.Stdin = os.Stdin
	}
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	if opts.StopSignal == 0 {
		opts.StopSignal = syscall.SIGTERM
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = 10 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Supervisor{opts: opts, log: log, wake: make(chan struct{}, 1)}
}

// Reload sends sig to the running child (its group with Options.Group). It
// is a no-op when no child runs, and while one is being stopped for a
// restart, since its successor starts on the newest files anyway.
func (s *Supervisor) Reload(sig syscall.Signal) {
	s.mu.Lock()
	if s.state != running {
		s.mu.Unlock()
		return
	}
	s.reloads = append(s.reloads, sig)
	s.mu.Unlock()
	s.poke()
}

// Restart stops the child (StopSignal, StopTimeout, SIGKILL), waits until it
// is reaped, and starts it again with env as its entire environment.
// Restarts asked for while one is under way are coalesced: the child ends up
// on the last env. Before Run, env replaces Options.Env; after Run returned,
// or once a signal that ends the child was forwarded (see Run), Restart is a
// no-op.
func (s *Supervisor) Restart(env []string) {
	s.mu.Lock()
	if s.state == finished {
		s.mu.Unlock()
		return
	}
	s.env, s.restart = slices.Clone(env), true
	s.mu.Unlock()
	s.poke()
}

// Conceal sets the values that Mask replaces in the child's output from
// now on: call it after every render, as values change on rotation. Values
// shorter than 6 bytes are left alone; where values overlap, the longest
// wins. Safe from any goroutine.
func (s *Supervisor) Conceal(values []Secret) {
	s.values.Store(newMatcher(values))
}

func (s *Supervisor) poke() {
	select {
	case s.wake <- struct{}{}:
	default: // a token is already waiting; Run reads the whole mailbox
	}
}

// take empties the mailbox.
func (s *Supervisor) take() (reloads []syscall.Signal, env []string, restart bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	reloads, env, restart = s.reloads, s.env, s.restart
	s.reloads, s.env, s.restart = nil, nil, false
	return reloads, env, restart
}

// Run starts the child and owns it until it exits on its own, or until ctx
// ends, which stops it gracefully. It returns the status aion-exec should
// exit with: the child's exit code, or 128+N if signal N killed it, and a nil
// error; Run returns only once the child is reaped. If a child cannot be
// started, the error says why as a shell would, with status 127 for a command
// not found and 126 for one that cannot be executed; the error carries that
// status too, for sysexits.Code.
//
// Forwarded signals never end Run by themselves (the child decides, as under
// tini), but once SIGINT, SIGTERM, SIGQUIT or StopSignal has been forwarded
// no new child is started: a restart under way ends with the old child's
// status, and later Restarts are ignored, since an orchestrator asked for the
// end.
//
// Run may be called once.
func (s *Supervisor) Run(ctx context.Context) (int, error) {
	s.mu.Lock()
	if s.state != idle {
		s.mu.Unlock()
		return sysexits.Software, sysexits.Wrap(sysexits.Software, errors.New("supervise: run called twice"))
	}
	s.state = running
	env := s.opts.Env
	if s.restart {
		env, s.env, s.restart = s.env, nil, false
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.state, s.reloads, s.env, s.restart = finished, nil, nil, false
		s.mu.Unlock()
	}()
	if len(s.opts.Args) == 0 {
		return sysexits.Usage, sysexits.Wrap(sysexits.Usage, errors.New("supervise: no command to run"))
	}
	if u := s.opts.User; u != nil {
		if err := u.check(); err != nil {
			return sysexits.NoPerm, err
		}
	}

	keepIgnored()
	defer reap.acquire(s.log)()
	sigs := s.opts.Signals
	if sigs == nil {
		ch := make(chan os.Signal, 64)
		defer notify(ch)()
		sigs = ch
	}
	return s.loop(ctx, sigs, env)
}

// Notify relays to c every signal that Run forwards, for a caller that
// hands c to Options.Signals; signals that were ignored when aion-exec
// started are left ignored. Registering ~55 signals takes the better part
// of a millisecond: a caller may do it while it prepares, off the path to
// the child's start. Stopping it costs as much again; a process about to
// exit need not.
func Notify(c chan<- os.Signal) { notify(c) }

// notify is Notify, and returns what stops it. Without the catcher
// (catch_other.go) SIGPIPE comes through os/signal too, and Run drops it:
// os/signal does not say whether the kernel raised it for aion-exec's own
// write to a broken pipe or socket.
func notify(c chan<- os.Signal) (stop func()) {
	sigs := forwardedSignals()
	if len(caughtSignals) == 0 && !hasSig(startIgnored, syscall.SIGPIPE) {
		sigs = append(sigs, syscall.SIGPIPE)
	}
	signal.Notify(c, sigs...)
	uncatch := catch(c)
	return func() {
		signal.Stop(c)
		uncatch()
	}
}

// loop is Run's select loop: the one place that changes the child.
func (s *Supervisor) loop(ctx context.Context, sigs <-chan os.Signal, env []string) (int, error) {
	r := &round{s: s, l: launcher{opts: &s.opts, log: s.log, values: s.values.Load, foreground: s.opts.Group && ownsTerminal(s.opts.Stdin)}}
	c, code, err := r.l.start(env)
	if err != nil {
		return code, err
	}
	r.c = c
	done := ctx.Done()
	for {
		select {
		case ws := <-r.c.exited:
			if code, end, err := r.exited(ws); end {
				return code, err
			}
		case sig, ok := <-sigs:
			if !ok {
				sigs = nil
				continue
			}
			if n, ok := forwardable(sig); ok {
				r.forward(n)
			}
		case <-s.wake:
			r.mail()
		case <-r.kill:
			r.kill = nil
			s.log.Warn("child did not stop in time, killing it", "pid", r.c.pid, "timeout", s.opts.StopTimeout)
			r.l.signal(r.c, syscall.SIGKILL)
		case <-done:
			done, r.quit = nil, true
			r.stop("shutdown", true)
		}
	}
}

// round is the state of loop for the child of the moment.
type round struct {
	s        *Supervisor
	l        launcher
	c        child
	next     []string // the environment to start with once c is gone
	restart  bool     // c is being stopped to be replaced
	quit     bool     // start no more children
	stopping bool     // c was asked to stop; StopTimeout runs
	timer    *time.Timer
	kill     <-chan time.Time
}

// stop starts StopTimeout for c, sending it StopSignal if send; a stop
// under way goes on as it is.
func (r *round) stop(reason string, send bool) {
	if r.stopping {
		return
	}
	r.stopping = true
	o := &r.s.opts
	if send {
		r.s.log.Info("stopping child", "pid", r.c.pid, "signal", signame(o.StopSignal), "reason", reason)
		r.l.signal(r.c, o.StopSignal)
	}
	r.timer = time.NewTimer(o.StopTimeout)
	r.kill = r.timer.C
}

func (r *round) forward(sig syscall.Signal) {
	r.s.log.Debug("forwarding signal", "pid", r.c.pid, "signal", signame(sig))
	r.l.signal(r.c, sig)
	if jobControl(sig) {
		// As dumb-init does: the child got it, now stop as the kernel
		// would have stopped us, so that a shell sees its job stopped.
		// SIGCONT resumes us and is forwarded in turn. As PID 1 the
		// kernel discards this, and the signal was only forwarded.
		syscall.Kill(os.Getpid(), syscall.SIGSTOP)
	}
	if r.s.opts.stopsChild(sig) {
		// An orchestrator asked for the end: the child gets StopTimeout
		// from now to go, and no successor.
		r.quit = true
		r.stop(signame(sig), false)
	}
}

// mail handles what Reload and Restart left in the mailbox.
func (r *round) mail() {
	reloads, env, ok := r.s.take()
	if ok && !r.quit {
		r.next, r.restart = env, true
		r.stop("restart", true)
	}
	if r.stopping {
		return
	}
	for _, sig := range reloads {
		r.s.log.Debug("reloading child", "pid", r.c.pid, "signal", signame(sig))
		r.l.signal(r.c, sig)
	}
}

// exited handles c's end: end reports whether Run returns, with code and
// err; otherwise the successor runs.
func (r *round) exited(ws syscall.WaitStatus) (code int, end bool, err error) {
	if r.timer != nil {
		r.timer.Stop()
		r.timer, r.kill = nil, nil
	}
	r.c.out.wait()
	code = exitCode(ws)
	r.s.log.Info("child exited", "pid", r.c.pid, "code", code)
	if !r.restart || r.quit {
		return code, true, nil
	}
	// Restarts asked for while c was stopping are coalesced into this one;
	// reloads for c are moot.
	if _, env, ok := r.s.take(); ok {
		r.next = env
	}
	c, code, err := r.l.start(r.next)
	if err != nil {
		return code, true, err
	}
	r.c, r.next, r.restart, r.stopping = c, nil, false, false
	return 0, false, nil
}
