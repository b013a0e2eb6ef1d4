package supervise

import (
	"bytes"
	"cmp"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// Secret is a value to conceal in the child's output (Options.Mask), and
// the name it shows as: <concealed:NAME>.
type Secret struct{ Name, Value string }

// minConceal is the shortest value concealed: shorter ones (a port, "true")
// would blank out ordinary output and tell little when shown.
const minConceal = 6

// Output masking holds back a tail of the child's output that may be the
// start of a value until more output tells, however long that takes: a
// timer that let it through would let the rest of the value through too,
// unmatched. The cost is that output which stops on the first bytes of a
// value waits for the next write. At the end of the stream a held tail is
// concealed if it is at least minConceal long, else written as it is. Once
// the child is gone its descendants get drainGrace to close the pipe
// before the rest is dropped.
const drainGrace = 250 * time.Millisecond

// matcher finds values; it is immutable, so copiers share it without locks.
type matcher struct {
	vals  []Secret // longest first
	repl  [][]byte
	first [256]bool // the first bytes of values
}

func newMatcher(secrets []Secret) *matcher {
	m := &matcher{}
	for _, s := range secrets {
		if len(s.Value) >= minConceal && !slices.ContainsFunc(m.vals, func(v Secret) bool { return v.Value == s.Value }) {
			m.vals = append(m.vals, s)
		}
	}
	// Longest first: where values overlap the longest wins. Equal values
	// go to the first name given.
	slices.SortStableFunc(m.vals, func(a, b Secret) int { return cmp.Compare(len(b.Value), len(a.Value)) })
	for _, v := range m.vals {
		m.repl = append(m.repl, []byte("<concealed:"+v.Name+">"))
		m.first[v.Value[0]] = true
	}
	return m
}

// scan appends b to dst with every value replaced. Unless final, a tail of
// b that may begin a value is returned as held instead, never longer than
// the longest value less one byte.
func (m *matcher) scan(dst, b []byte, final bool) (out, held []byte) {
	if m == nil {
		return append(dst, b...), nil
	}
	done := 0
	for i := 0; i < len(b); {
		if !m.first[b[i]] {
			i++
			continue
		}
		k, n, wait := m.at(b[i:], final)
		if wait {
			return append(dst, b[done:i]...), b[i:]
		}
		if k < 0 {
			i++
			continue
		}
		dst = append(append(dst, b[done:i]...), m.repl[k]...)
		i += n
		done = i
	}
	return append(dst, b[done:]...), nil
}

// at returns the longest value that b starts with and its length, or -1;
// wait when b is too short to tell whether a longer one does. At the end
// of the stream, b that is the start of a value and at least minConceal
// long counts as that value: a value cut short is still a secret.
func (m *matcher) at(b []byte, final bool) (k, n int, wait bool) {
	cut := -1 // the longest value that b is the start of, at the end
	for k, v := range m.vals {
		switch {
		case len(b) >= len(v.Value):
			if string(b[:len(v.Value)]) == v.Value {
				return k, len(v.Value), false
			}
		case !strings.HasPrefix(v.Value, string(b)):
		case !final:
			return -1, 0, true
		case cut < 0 && len(b) >= minConceal:
			cut = k
		}
	}
	if cut >= 0 {
		return cut, len(b), false
	}
	return -1, 0, false
}

// concealed is one of the child's output pipes, copied to aion-exec's own
// stream with the values of the moment replaced.
type concealed struct {
	r    *os.File
	done chan struct{}
}

// copyConcealed copies r to w until r ends. On a write error (aion-exec's
// own stream is broken) it closes r, so that the child's next write fails
// as it would have without masking.
func copyConcealed(r, w *os.File, values func() *matcher) *concealed {
	c := &concealed{r: r, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		defer r.Close()
		buf := make([]byte, 32<<10)
		var held, out []byte
		for {
			n, err := r.Read(buf)
			data := append(held, buf[:n]...)
			out, held = values().scan(out[:0], data, err != nil)
			held = bytes.Clone(held)
			if len(out) > 0 {
				if _, werr := w.Write(out); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return c
}

// wait waits for c to copy all, until drainGrace after the child ended;
// then what is left is dropped.
func (c *concealed) wait() {
	select {
	case <-c.done:
	case <-time.After(drainGrace):
		c.r.Close()
		<-c.done
	}
}

// concealing is a child's pair of masked streams.
type concealing []*concealed

func (cs concealing) wait() {
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(c.wait)
	}
	wg.Wait()
}
