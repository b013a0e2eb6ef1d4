package backoff

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	for i := range 30 {
		d := b.Next()
		ceil := min(100*time.Millisecond<<i, time.Second)
		if d < floor || d > ceil {
			t.Fatalf("attempt %d: wait %s outside [%s, %s]", i, d, floor, ceil)
		}
	}
	b.Reset()
	if d := b.Next(); d > 100*time.Millisecond {
		t.Errorf("after Reset: %s", d)
	}
}

func TestJitter(t *testing.T) {
	for range 1000 {
		if d := Jitter(time.Minute); d < 54*time.Second || d > time.Minute {
			t.Fatalf("Jitter(1m) = %s", d)
		}
	}
}

// Full jitter: a fleet's first retries cover the whole window, not its
// second half (where equal jitter would pile them up).
func TestFirstRetriesSpreadOverTheWindow(t *testing.T) {
	var low, high int
	for range 1000 {
		b := Backoff{Min: time.Second, Max: time.Minute}
		switch d := b.Next(); {
		case d < 250*time.Millisecond:
			low++
		case d > 750*time.Millisecond:
			high++
		}
	}
	// Uniform over [0, 1s]: about 250 each; equal jitter would give no low.
	if low < 150 || high < 150 {
		t.Errorf("of 1000 first retries %d fell in the first quarter of the window and %d in the last; want about 250 each", low, high)
	}
}
