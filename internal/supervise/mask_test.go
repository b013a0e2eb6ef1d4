package supervise

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

var testSecrets = []Secret{
	{"PGPASSWORD", "hunter2hunter2"},
	{"SHORT", "hunter"},       // overlaps PGPASSWORD's start
	{"MIDDLE", "ter2hunt"},    // and its middle
	{"TINY", "abc"},           // too short to conceal
	{"AAA", "aaaaaaaa"},       // overlaps itself
	{"AA", "aaaaaa"},          // and a shorter run of the same
	{"DUP", "hunter2hunter2"}, // the same value: the first name wins
}

// stream feeds in to m in the chunks that cuts (offsets) make.
func stream(m *matcher, in []byte, cuts []int) string {
	var out, held []byte
	last := 0
	for _, c := range append(cuts, len(in)) {
		out, held = m.scan(out, append(bytes.Clone(held), in[last:c]...), false)
		if len(held) >= 14 { // the longest value
			panic("held back a whole value")
		}
		last = c
	}
	out, _ = m.scan(out, held, true)
	return string(out)
}

func TestConcealScan(t *testing.T) {
	t.Parallel()
	m := newMatcher(testSecrets)
	for in, want := range map[string]string{
		"pw=hunter2hunter2.":   "pw=<concealed:PGPASSWORD>.",
		"hunter2hunter":        "<concealed:SHORT>2<concealed:SHORT>",
		"xter2hunter":          "x<concealed:MIDDLE>er",
		"abc abcdef":           "abc abcdef",
		"aaaaaaaaaaaaaa":       "<concealed:AAA><concealed:AA>",
		"aaaaaaaaaaaaaaa":      "<concealed:AAA><concealed:AA>a",
		"hunter2hunter2hunter": "<concealed:PGPASSWORD><concealed:SHORT>",
		"":                     "",
	} {
		if got := stream(m, []byte(in), nil); got != want {
			t.Errorf("conceal %q = %q, want %q", in, got, want)
		}
	}
	if got := stream(nil, []byte("hunter2hunter2"), []int{3}); got != "hunter2hunter2" {
		t.Errorf("without values: %q", got)
	}
}

// TestConcealSplitEverywhere: the output is the same however the input is
// cut into writes: once at every position, twice at every pair, and byte
// by byte.
func TestConcealSplitEverywhere(t *testing.T) {
	t.Parallel()
	m := newMatcher(testSecrets)
	in := []byte("a hunter2hunter2 b xter2hunter aaaaaaaaaaa hunter2hunte abc hunter2hunter2hunter2")
	want := stream(m, in, nil)
	if strings.Contains(want, "hunter2") {
		t.Fatalf("one-shot output leaks: %q", want)
	}
	var every []int
	for i := range in {
		every = append(every, i)
		for j := i; j <= len(in); j++ {
			if got := stream(m, in, []int{i, j}); got != want {
				t.Fatalf("cut at %d and %d: %q, want %q", i, j, got, want)
			}
		}
	}
	if got := stream(m, in, every); got != want {
		t.Fatalf("byte by byte: %q, want %q", got, want)
	}
}

func FuzzConceal(f *testing.F) {
	f.Add([]byte("x hunter2hunter2 y"), []byte{3, 9})
	f.Add([]byte("aaaaaaaaaaaaaaaaaaaa"), []byte{1, 1, 1})
	f.Add([]byte("hunter2hunter2hunter2hunter"), []byte{7, 0, 2})
	m := newMatcher(testSecrets)
	f.Fuzz(func(t *testing.T, in, steps []byte) {
		var cuts []int
		at := 0
		for _, s := range steps {
			if at += int(s); at > len(in) {
				break
			}
			cuts = append(cuts, at)
		}
		got, want := stream(m, in, cuts), stream(m, in, nil)
		if got != want {
			t.Fatalf("cuts %v: %q, want %q", cuts, got, want)
		}
		// Whatever the input and however it is cut, no value long enough
		// to conceal comes through.
		for _, s := range testSecrets {
			if len(s.Value) >= minConceal && strings.Contains(got, s.Value) {
				t.Fatalf("cuts %v: %s's value came through: %q from %q", cuts, s.Name, got, in)
			}
		}
	})
}

// TestConcealHoldsAcrossPauses: a value written in two parts however far
// apart is still concealed, and a value cut short by the end of the stream
// is concealed too; a short tail is written as it is.
func TestConcealHoldsAcrossPauses(t *testing.T) {
	t.Parallel()
	childR, childW, err := os.Pipe()
	must(t, err)
	outR, outW, err := os.Pipe()
	must(t, err)
	defer outR.Close()
	m := newMatcher(testSecrets)
	c := copyConcealed(childR, outW, func() *matcher { return m })
	_, err = childW.WriteString("Password: hunt")
	must(t, err)
	buf := make([]byte, 64)
	must(t, outR.SetReadDeadline(time.Now().Add(timeout)))
	n, err := outR.Read(buf)
	must(t, err)
	if got := string(buf[:n]); got != "Password: " {
		t.Fatalf("first write came through as %q, want only what cannot begin a value", got)
	}
	// However long the child pauses here, "hunt" stays held: the reader
	// gets nothing more until the rest arrives.
	_, err = childW.WriteString("er2hunter2 and ter2hu")
	must(t, err)
	childW.Close()
	c.wait()
	outW.Close()
	rest, err := io.ReadAll(outR)
	must(t, err)
	if string(rest) != "<concealed:PGPASSWORD> and <concealed:MIDDLE>" {
		t.Errorf("rest = %q", rest)
	}
}

// TestMaskOutput: the child's stdout and stderr reach ours with values
// concealed, values set later apply to later output, and everything is
// written before Run returns.
func TestMaskOutput(t *testing.T) {
	t.Parallel()
	errR, errW, err := os.Pipe()
	must(t, err)
	defer errR.Close()
	p := startWith(t, Options{Args: []string{self()}, Env: helperEnv("child"), Mask: true, Stderr: errW}, true, func(s *Supervisor) {
		s.Conceal(testSecrets)
	})
	must(t, p.expect("child ready gen="))
	must(t, p.send("print pw=hunt er2hun ter2 !"))
	must(t, p.expect("pw=<concealed:PGPASSWORD>!"))
	p.s.Conceal([]Secret{{"NEW", "rotated-value"}})
	must(t, p.send("print hunter2hunter2 rotated-value"))
	must(t, p.expect("hunter2hunter2<concealed:NEW>"))
	must(t, p.send("eprint err:rotated-value"))
	must(t, p.send("print last-line-no-newline-rot")) // ends: print adds a newline
	must(t, p.send("exit 0"))
	r, err := p.wait()
	must(t, err)
	if r.code != 0 {
		t.Errorf("code = %d", r.code)
	}
	errW.Close()
	stderr, err := io.ReadAll(errR)
	must(t, err)
	if string(stderr) != "err:<concealed:NEW>" {
		t.Errorf("stderr = %q, want err:<concealed:NEW>", stderr)
	}
	rest, err := p.rest()
	must(t, err)
	if len(rest) != 1 || rest[0] != "last-line-no-newline-rot" {
		t.Errorf("last lines = %q", rest)
	}
}
