package shell

import (
	"os/exec"
	"testing"
)

func TestQuoteRoundTrips(t *testing.T) {
	for _, s := range []string{"", "plain", "it's", "''", `a'\''b`, "new\nline", `$(x) "y"`, "tab\tend "} {
		if got := Unquote(Quote(s)); got != s {
			t.Errorf("Unquote(Quote(%q)) = %q", s, got)
		}
		// What a real shell reads back is the same bytes.
		out, err := exec.Command("sh", "-c", "printf %s "+Quote(s)).Output()
		if err != nil || string(out) != s {
			t.Errorf("sh read back %q, %v; want %q", out, err, s)
		}
	}
	if got := Unquote("bare"); got != "bare" {
		t.Errorf("Unquote(bare) = %q", got)
	}
}
