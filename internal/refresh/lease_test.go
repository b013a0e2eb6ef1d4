package refresh

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aionos/aion-exec/internal/render"
	"github.com/aionos/aion-exec/internal/vault"
)

func TestPlanFor(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	hour := time.Hour
	for _, tc := range []struct {
		name     string
		l        vault.Lease
		capped   bool
		rotate   bool
		from, to time.Duration // the plan's window after t0
	}{
		{"renewable: renew at 2/3", vault.Lease{ID: "l", Duration: hour, Wanted: hour, Renewable: true, Obtained: t0}, false, false, 34 * time.Minute, 40 * time.Minute},
		{"capped: rotate a tenth before the end", vault.Lease{ID: "l", Duration: 20 * time.Minute, Wanted: hour, Renewable: true, Obtained: t0}, true, true, 8 * time.Minute, 14 * time.Minute},
		{"not renewable: rotate a tenth before the end", vault.Lease{ID: "l", Duration: hour, Wanted: hour, Obtained: t0}, false, true, 48 * time.Minute, 54 * time.Minute},
		{"certificate: re-issue at 2/3 of validity", vault.Lease{Obtained: t0.Add(-time.Hour), NotBefore: t0, NotAfter: t0.Add(24 * hour)}, false, true,
			16*hour - 144*time.Minute, 16 * hour},
		// Backdated by Vault: the short-lived certificate counts from
		// its arrival, not from a NotBefore 30s before.
		{"backdated certificate", vault.Lease{Obtained: t0, NotBefore: t0.Add(-30 * time.Second), NotAfter: t0.Add(6 * time.Second)}, false, true,
			4*time.Second - 600*time.Millisecond, 4 * time.Second},
	} {
		for range 200 {
			p := planFor(&tc.l, tc.capped)
			if d := p.at.Sub(t0); p.rotate != tc.rotate || d < tc.from || d > tc.to {
				t.Fatalf("%s: %s at +%s, want rotate %t within +%s..+%s", tc.name, map[bool]string{true: "rotate", false: "renew"}[p.rotate], d, tc.rotate, tc.from, tc.to)
			}
		}
	}
}

// leaseSource is a Vault with one KV secret ("conn") and a database role
// ("creds") whose leases last ttl and can be renewed up to maxTTL, each
// fetch a new user. It counts what each path got.
type leaseSource struct {
	mu           sync.Mutex // guards all below
	ttl, maxTTL  time.Duration
	issued       int
	issuedAt     time.Time
	reads        map[string]int
	renewals     int
	revoked      []string
	renewed      chan struct{}
	failRenewals bool
	conn         map[string]any // the KV secret's data; nil: host, username and password
}

func (s *leaseSource) ReadAll(_ context.Context, refs []vault.Ref) ([]*vault.Secret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*vault.Secret
	for _, r := range refs {
		s.reads[r.Path]++
		if r.Path == "aionos/conn" {
			conn := s.conn
			if conn == nil {
				conn = map[string]any{"host": "db", "username": "static", "password": "static"}
			}
			out = append(out, &vault.Secret{Name: r.Name, Data: conn})
			continue
		}
		s.issued++
		s.issuedAt = time.Now()
		l := &vault.Lease{ID: fmt.Sprintf("database/creds/app/%d", s.issued), Duration: s.ttl, Wanted: s.ttl, Renewable: true, Obtained: s.issuedAt}
		out = append(out, &vault.Secret{Name: r.Name, Lease: l,
			Data: map[string]any{"username": fmt.Sprintf("v-app-%d", s.issued), "password": fmt.Sprintf("pw-%d", s.issued)}})
	}
	return out, nil
}

func (s *leaseSource) Renew(_ context.Context, l *vault.Lease) (*vault.Lease, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer func() { s.renewed <- struct{}{} }()
	if s.failRenewals {
		return nil, fmt.Errorf("renew lease %s: cannot reach Vault", l.ID)
	}
	s.renewals++
	n := *l
	n.Obtained = time.Now()
	n.Duration = min(s.ttl, s.issuedAt.Add(s.maxTTL).Sub(n.Obtained).Truncate(time.Millisecond))
	return &n, nil
}

func (s *leaseSource) Revoke(_ context.Context, l *vault.Lease) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked = append(s.revoked, l.ID)
	return nil
}

func (s *leaseSource) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads[path]
}

// A dynamic user merged over a KV secret: the lease is renewed (not read
// again) until its max TTL, then a new user is fetched before the lease
// ends and the child is reloaded; KV polls never fetch a new user, and a
// rotation never reads KV.
func TestLeaseRenewedThenRotated(t *testing.T) {
	src := &leaseSource{ttl: 600 * time.Millisecond, maxTTL: 2 * time.Second, reads: map[string]int{}, renewed: make(chan struct{}, 100)}
	tdir := t.TempDir()
	writeFile(t, tdir+"/db.env.tmpl", "DB_HOST={{ .db.host }}\nDB_USER={{ .db.username }}\nDB_PASSWORD={{ .db.password }}\n")
	r := New(Options{
		Secrets:    []vault.Ref{{Name: "db", Path: "aionos/conn"}, {Name: "db", Path: "database/creds/app"}},
		Templates:  render.Options{TemplatesDir: tdir, RenderDir: t.TempDir() + "/out", Secrets: []string{"db"}},
		HostFields: []string{"host"}, RestartOn: "host", Interval: 150 * time.Millisecond, Log: slog.New(slog.DiscardHandler),
	}, src)
	if err := r.Load(); err != nil {
		t.Fatal(err)
	}
	d := refresh(t, r, All)
	if !slices.Contains(d.Env, "DB_USER=v-app-1") || !slices.Contains(d.Env, "DB_HOST=db") {
		t.Fatalf("first render: %q", d.Env)
	}
	applied := make(chan Decision, 10)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { r.Run(ctx, func(d Decision) { applied <- d }) })
	defer func() { cancel(); wg.Wait() }()

	select {
	case d := <-applied:
		if d.Action != Reload || !slices.Contains(d.Env, "DB_USER=v-app-2") {
			t.Fatalf("rotation: %s %q", d.Action, d.Env)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no rotation")
	}
	src.mu.Lock()
	renewals, issued := src.renewals, src.issued
	src.mu.Unlock()
	if renewals < 2 || issued != 2 {
		t.Errorf("%d renewals and %d users before the first rotation; want renewals, not new users, until the max TTL", renewals, issued)
	}
	if n := src.count("aionos/conn"); n < 2 {
		t.Errorf("the KV part was read %d times: polls must go on", n)
	}
	cancel()
	wg.Wait()
	r.RevokeAll(context.Background())
	if !slices.Equal(src.revoked, []string{"database/creds/app/2"}) {
		t.Errorf("revoked %v, want the lease in use", src.revoked)
	}
}

// Vault away at a renewal: no new user, no reload, the child keeps the
// valid one; renewal resumes when Vault is back.
func TestLeaseRenewalRetriedWhileVaultIsAway(t *testing.T) {
	src := &leaseSource{ttl: 3 * time.Second, maxTTL: time.Hour, reads: map[string]int{}, renewed: make(chan struct{}, 100), failRenewals: true}
	tdir := t.TempDir()
	writeFile(t, tdir+"/db.env.tmpl", "DB_USER={{ .db.username }}\n")
	r := New(Options{Secrets: []vault.Ref{{Name: "db", Path: "database/creds/app"}},
		Templates: render.Options{TemplatesDir: tdir, RenderDir: t.TempDir() + "/out", Secrets: []string{"db"}},
		RestartOn: "host", Interval: time.Hour, Log: slog.New(slog.DiscardHandler)}, src)
	if err := r.Load(); err != nil {
		t.Fatal(err)
	}
	refresh(t, r, All)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	applied := make(chan Decision, 10)
	wg.Go(func() { r.Run(ctx, func(d Decision) { applied <- d }) })
	defer func() { cancel(); wg.Wait() }()
	<-src.renewed // failed
	src.mu.Lock()
	src.failRenewals = false
	src.mu.Unlock()
	select {
	case <-src.renewed: // the retry, now served
	case <-time.After(10 * time.Second):
		t.Fatal("renewal not retried")
	}
	select {
	case d := <-applied:
		t.Errorf("a renewal applied %s", d.Action)
	default:
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if src.issued != 1 {
		t.Errorf("%d users fetched; a renewal must not fetch one", src.issued)
	}
}

// A rotation whose render fails (a template broken at that moment) keeps
// the new secret: it is not fetched again at every retry (each fetch is a
// new database user), it is renewed and revoked like any other, and the
// pass that finds the template fixed renders it.
func TestRotationThatFailsToRenderKeepsTheNewSecret(t *testing.T) {
	src := &leaseSource{ttl: time.Hour, maxTTL: 24 * time.Hour, reads: map[string]int{}, renewed: make(chan struct{}, 100)}
	tdir := t.TempDir()
	writeFile(t, tdir+"/db.env.tmpl", "DB_USER={{ .db.username }}\n")
	r := New(Options{Secrets: []vault.Ref{{Name: "db", Path: "database/creds/app"}},
		Templates: render.Options{TemplatesDir: tdir, RenderDir: t.TempDir() + "/out", Secrets: []string{"db"}},
		RestartOn: "host", Interval: time.Hour}, src)
	if err := r.Load(); err != nil {
		t.Fatal(err)
	}
	refresh(t, r, All)
	writeFile(t, tdir+"/db.env.tmpl", "DB_USER={{ .db.nokey }}\n")
	ctx := context.Background()
	if _, err := r.Refresh(ctx, Due{Leased: []int{0}, Templates: true}); err == nil {
		t.Fatal("a broken template rendered")
	}
	for range 3 { // retries, template still broken
		if _, err := r.Refresh(ctx, Due{Templates: true}); err == nil {
			t.Fatal("a broken template rendered")
		}
	}
	writeFile(t, tdir+"/db.env.tmpl", "DB_USER={{ .db.username }}\n")
	d := refresh(t, r, Due{Templates: true})
	if d.Action != Reload || !slices.Contains(d.Env, "DB_USER=v-app-2") || src.issued != 2 {
		t.Errorf("after the fix: %s %q, %d users fetched; want a reload to v-app-2 and 2 users", d.Action, d.Env, src.issued)
	}
	r.RevokeAll(ctx)
	if !slices.Equal(src.revoked, []string{"database/creds/app/2"}) {
		t.Errorf("revoked %v, want the new lease", src.revoked)
	}
}
