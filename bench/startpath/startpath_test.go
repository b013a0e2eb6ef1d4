package startpath

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aionos/aion-exec/internal/refresh"
	"github.com/aionos/aion-exec/internal/render"
)

var sizes = []int{5, 100}

// loadSet parses the bench template for n secrets.
func loadSet(tb testing.TB, n int) *render.Set {
	tb.Helper()
	dir := tb.TempDir()
	if err := WriteTemplate(dir, n); err != nil {
		tb.Fatal(err)
	}
	names := make([]string, n)
	for i := range names {
		names[i] = Name(i + 1)
	}
	set, err := render.Load(render.Options{TemplatesDir: dir, RenderDir: tb.TempDir(), Secrets: names})
	if err != nil {
		tb.Fatal(err)
	}
	return set
}

// BenchmarkLoad is template parsing: built-ins plus the bench template.
func BenchmarkLoad(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			dir := b.TempDir()
			if err := WriteTemplate(dir, n); err != nil {
				b.Fatal(err)
			}
			names := make([]string, n)
			for i := range names {
				names[i] = Name(i + 1)
			}
			opts := render.Options{TemplatesDir: dir, RenderDir: b.TempDir(), Secrets: names}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := render.Load(opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRender is one render of 5×n variables: every poll does it.
func BenchmarkRender(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			set, d := loadSet(b, n), Data(n, "a")
			b.ReportAllocs()
			for b.Loop() {
				if _, err := set.Render(d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkClassify is the change decision after a poll: unchanged data
// (the steady state) and one field of one secret changed.
func BenchmarkClassify(b *testing.B) {
	hostFields := strings.Split("host,hostname,port,database,dbname,endpoint,address,addr,url,uri", ",")
	for _, n := range sizes {
		set := loadSet(b, n)
		oldData := Data(n, "a")
		oldOut, err := set.Render(oldData)
		if err != nil {
			b.Fatal(err)
		}
		same := Data(n, "a")
		sameOut, _ := set.Render(same)
		changed := Data(n, "a")
		changed[Name(1)].(map[string]any)["f1"] = "new-value"
		changedOut, _ := set.Render(changed)
		for _, c := range []struct {
			name string
			data render.Data
			out  *render.Output
		}{{"unchanged", same, sameOut}, {"one-field", changed, changedOut}} {
			b.Run(fmt.Sprintf("%d/%s", n, c.name), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					refresh.Classify(oldData, c.data, oldOut, c.out, hostFields)
				}
			})
		}
	}
}

// vaultEnv is the Vault of bench/run.sh or any dev server seeded the same
// way (BENCH_VAULT_ADDR, BENCH_VAULT_TOKEN); tests that need one skip
// without it.
func vaultEnv(tb testing.TB, n int) map[string]string {
	tb.Helper()
	addr, token := os.Getenv("BENCH_VAULT_ADDR"), os.Getenv("BENCH_VAULT_TOKEN")
	if addr == "" || token == "" {
		tb.Skip("BENCH_VAULT_ADDR and BENCH_VAULT_TOKEN not set")
	}
	dir := tb.TempDir()
	if err := WriteTemplate(dir, n); err != nil {
		tb.Fatal(err)
	}
	return Env(addr, token, dir, tb.TempDir(), n)
}

// BenchmarkStartPath is the whole start path in process, against Vault.
func BenchmarkStartPath(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			env := vaultEnv(b, n)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Run(context.Background(), env); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestBreakdown prints the median time of each start step over many runs:
//
//	BENCH_VAULT_ADDR=... BENCH_VAULT_TOKEN=... go test -run Breakdown -v ./startpath
func TestBreakdown(t *testing.T) {
	const runs = 40
	for _, n := range sizes {
		env := vaultEnv(t, n)
		var names []string
		took := map[string][]time.Duration{}
		var totals []time.Duration
		for i := 0; i < runs+1; i++ {
			steps, err := Run(context.Background(), env)
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				continue // warm-up
			}
			var total time.Duration
			for _, s := range steps {
				if len(took[s.Name]) == 0 {
					names = append(names, s.Name)
				}
				took[s.Name] = append(took[s.Name], s.Took)
				total += s.Took
			}
			totals = append(totals, total)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "start path, %d secrets, median of %d runs:\n", n, runs)
		for _, name := range names {
			fmt.Fprintf(&b, "  %-34s %8.3f ms\n", name, ms(medianDur(took[name])))
		}
		fmt.Fprintf(&b, "  %-34s %8.3f ms\n", "total", ms(medianDur(totals)))
		t.Log(b.String())
	}
}

func medianDur(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// BenchmarkRawReads is the floor under ReadAll: the same reads with bare
// net/http, connections kept, p at a time. What it takes is Vault's time.
func BenchmarkRawReads(b *testing.B) {
	for _, n := range sizes {
		for _, p := range []int{1, 8, 32} {
			b.Run(fmt.Sprintf("%d/par%d", n, p), func(b *testing.B) {
				env := vaultEnv(b, n)
				hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: p}}
				read := func(i int) error {
					req, _ := http.NewRequest("GET", env["AION_VAULT_ADDR"]+"/v1/secret/data/bench/"+Name(i), nil)
					req.Header.Set("X-Vault-Token", env["AION_VAULT_TOKEN"])
					resp, err := hc.Do(req)
					if err != nil {
						return err
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						return fmt.Errorf("read %s: HTTP %d", Name(i), resp.StatusCode)
					}
					return nil
				}
				for b.Loop() {
					sem := make(chan struct{}, p)
					var wg sync.WaitGroup
					errs := make(chan error, n)
					for i := 1; i <= n; i++ {
						sem <- struct{}{}
						wg.Go(func() {
							defer func() { <-sem }()
							if err := read(i); err != nil {
								errs <- err
							}
						})
					}
					wg.Wait()
					close(errs)
					for err := range errs {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
