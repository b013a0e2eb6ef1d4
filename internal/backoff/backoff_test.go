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
		if d < ceil/2 || d > ceil {
			t.Fatalf("attempt %d: wait %s outside [%s, %s]", i, d, ceil/2, ceil)
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
