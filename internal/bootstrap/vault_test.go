package bootstrap

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/aionos/aion-exec/internal/sysexits"
)

// TestWaitHealthLogsStateChangesOnly feeds the wait a Vault that fails,
// then is sealed, then standby, then active, each for several polls: one
// log line per state, not per poll.
func TestWaitHealthLogsStateChangesOnly(t *testing.T) {
	t.Parallel()
	answers := []any{500, 500, 500,
		api.HealthResponse{Initialized: true, Sealed: true}, api.HealthResponse{Initialized: true, Sealed: true},
		api.HealthResponse{Initialized: true, Standby: true}, api.HealthResponse{Initialized: true, Standby: true},
		api.HealthResponse{Initialized: true}}
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/sys/health" {
			t.Errorf("unexpected request %s", r.URL.Path)
		}
		mu.Lock()
		a := answers[min(n, len(answers)-1)]
		n++
		mu.Unlock()
		if code, ok := a.(int); ok {
			w.WriteHeader(code)
			w.Write([]byte(`{"errors":["storage unavailable"]}`))
			return
		}
		w.WriteHeader(299)
		json.NewEncoder(w).Encode(a)
	}))
	defer srv.Close()

	var logs bytes.Buffer
	opts := Options{Addr: srv.URL, Log: slog.New(slog.NewTextHandler(&logs, nil)), pollMin: time.Millisecond}
	opts.defaults()
	b, err := newBootstrapper(opts, &Summary{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := b.waitHealth(context.Background(), "active", func(h *api.HealthResponse) bool { return !h.Sealed && !h.Standby })
	if err != nil {
		t.Fatal(err)
	}
	if h.Sealed || h.Standby {
		t.Errorf("returned %+v, want the active answer", h)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	want := []string{`err="HTTP 500: storage unavailable"`, "err=sealed", "err=standby", `msg="vault active"`}
	if len(lines) != len(want) {
		t.Fatalf("%d log lines, want %d:\n%s", len(lines), len(want), logs.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("log line %d = %s, want %s", i, lines[i], w)
		}
	}
}

func TestWaitHealthTimesOutWithLastState(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(299)
		json.NewEncoder(w).Encode(api.HealthResponse{Initialized: true, Sealed: true})
	}))
	defer srv.Close()
	opts := Options{Addr: srv.URL, pollMin: time.Millisecond, Timeout: 50 * time.Millisecond}
	opts.defaults()
	b, err := newBootstrapper(opts, &Summary{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
	defer cancel()
	_, err = b.waitHealth(ctx, "active", func(h *api.HealthResponse) bool { return !h.Sealed })
	if sysexits.Code(err) != sysexits.Unavailable || !strings.Contains(err.Error(), "sealed (gave up after AION_VAULT_BOOTSTRAP_TIMEOUT=50ms)") {
		t.Errorf("err = %v; want exit 69 with the last state and the timeout", err)
	}
}
