package supervise

// rawSignals is set where supervise receives SIGPIPE, SIGPROF and 32-34
// with their sender (see siginfo), which os/signal cannot do.
var rawSignals = false
