package main

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// simDur shows a real duration as simulated time at the run's scale.
func simDur(d time.Duration, scale float64) string {
	s := time.Duration(float64(d) * scale).Round(time.Second)
	neg := ""
	if s < 0 {
		neg, s = "-", -s
	}
	h, m := int(s/time.Hour), int(s%time.Hour/time.Minute)
	if h == 0 {
		return fmt.Sprintf("%s%dm%02ds", neg, m, int(s%time.Minute/time.Second))
	}
	return fmt.Sprintf("%s%dh%02dm", neg, h, m)
}

// markdown is leases.md, a section for BENCHMARKS.md.
func markdown(r Result) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	intro(w, r)
	requestTables(w, r)
	childTable(w, r)
	cycleTable(w, r)
	reading(w, r)
	paths(w, r.Tools)
	w("\n")
	caveats(w, r)
	return b.String()
}

// intro says what ran, how compressed, and where.
func intro(w func(string, ...any), r Result) {
	st, m := r.Settings, r.Machine
	w("## Leases: Vault requests for one dynamic secret (1 h TTL, 24 h max TTL)\n\n")
	w("One database user from `database/creds/app` (Vault's database engine, its PostgreSQL plugin, a real\n")
	w("PostgreSQL) rendered into a child's environment by the three tools at once, each with a token of its\n")
	w("own; every request counted from Vault's file audit device. Time is compressed %g×: the role's\n", st.EffectiveScale)
	w("`default_ttl` is %s (1 h) and `max_ttl` %s (24 h); the run lasted %.0f s = %.3g simulated days.\n", st.TTL, st.MaxTTL, st.RunSeconds, st.RunSeconds/durSeconds(st.SimDay))
	w("Versions: %s. Machine: %d CPUs, %s, 1-minute load average %.2f at the start and %.2f at the end (a shared machine",
		versions(st.Versions), m.CPUs, m.GoVersion, m.LoadStart, m.LoadEnd)
	if m.LoadStart > 2*float64(m.CPUs) && m.LoadEnd < float64(m.CPUs) {
		w("; the start's figure is the tail of the work that ran before this run, which ran alone")
	}
	w(").\n\n")
}

// requestTables are the requests of the first simulated day and of the
// whole run.
func requestTables(w func(string, ...any), r Result) {
	st := r.Settings
	w("### Requests per simulated day\n\n")
	w("The first simulated day from each tool's start (its start included, as in docs/leases.md's timeline):\n\n")
	w("| tool | new users (`database/creds/app`) | lease renewals | token lookups/renewals | other | total | vs aion-exec |\n")
	w("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	base := 0
	for _, t := range r.Tools {
		if t.Name == ToolAion {
			base = t.Day1.Total
		}
	}
	for _, t := range r.Tools {
		w("| %s | %d | %d | %d | %d | **%d** | %s |\n", t.Name, t.Day1.Creds, t.Day1.Renew, t.Day1.Token, t.Day1.Other, t.Day1.Total, ratio(t.Day1.Total, base))
	}
	w("\n### Requests per simulated hour and day over the whole run\n\n")
	w("The run's counts (%.3g simulated days, the start included) divided by its length; the\n", st.RunSeconds/durSeconds(st.SimDay))
	w("requests a tool makes while it stops (aion-exec revokes its lease) are not in them but in the last column.\n\n")
	w("| tool | creds / h | renew / h | token / h | other / h | total / h | total / day | run total | at exit |\n")
	w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, t := range r.Tools {
		w("| %s | %.3f | %.3f | %.3f | %.3f | **%.3f** | %.1f | %d | %d (%s) |\n", t.Name, t.PerHour.Creds, t.PerHour.Renew, t.PerHour.Token,
			t.PerHour.Other, t.PerHour.Total, t.PerDay.Total, t.Run.Total, t.Exit.Total, exitPaths(t))
	}
}

// childTable is what each tool's child ran on.
func childTable(w func(string, ...any), r Result) {
	st := r.Settings
	w("\n### The child and its credentials\n\n")
	w("| tool | users read | child starts | restarts | SIGHUPs | renewals per user | least time between the child's new user and the old lease's end | child ever ran on an expired user |\n")
	w("| --- | ---: | ---: | ---: | ---: | --- | --- | --- |\n")
	for _, t := range r.Tools {
		var ren []string
		for _, c := range t.Credentials {
			ren = append(ren, fmt.Sprint(c.Renewals))
		}
		lead := "–"
		if t.MinHoldLead != nil {
			lead = fmt.Sprintf("%s (%.1fs real)", simDur(*t.MinHoldLead, st.EffectiveScale), t.MinHoldLead.Seconds())
		}
		expired := "no"
		if t.ExpiredHeld {
			expired = "**yes**"
		}
		w("| %s | %d | %d | %d | %d | %s | %s | %s |\n", t.Name, len(t.Credentials), t.ChildStarts, t.Restarts, t.Hups,
			strings.Join(ren, ", "), lead, expired)
	}
}

// cycleTable is one user's life, measured and from aion-exec's rules.
func cycleTable(w func(string, ...any), r Result) {
	st := r.Settings
	w("\n### One user's life (steady state)\n\n")
	w("From the read of the first user to the read of the next, that user's renewals, and what that cycle costs\n")
	w("per simulated day (one read and its renewals, without the start's token lookup and mount listing):\n\n")
	w("| | lifetime (simulated) | renewals | requests / day |\n| --- | --- | ---: | ---: |\n")
	for _, t := range r.Tools {
		if t.Cycle == nil {
			w("| %s | no rotation in the run | – | – |\n", t.Name)
			continue
		}
		w("| %s | %s | %d | %.1f |\n", t.Name, t.Cycle.SimLifetime, t.Cycle.Renewals, t.Cycle.RequestsPerDay)
	}
	w("| aion-exec's rules (docs/leases.md), averaged over the splay, at %s / %s | %s | %.1f | %.1f |\n", st.TTL, st.MaxTTL,
		r.AionModel.SimLifetime, r.AionModel.Renewals, r.AionModel.RequestsPerDay)
	w("| the same rules at a real 1 h / 24 h | %s | %.1f | %.1f |\n", r.AionModel1h.SimLifetime, r.AionModel1h.Renewals, r.AionModel1h.RequestsPerDay)
	w("| docs/leases.md's worked timeline | ≈23h51m | ≈38 | ≈%d |\n", r.DocsPrediction)
}

// paths lists each tool's requests by path, its errors and an early exit.
func paths(w func(string, ...any), tools []ToolResult) {
	w("\nRequest paths per tool over the run:\n\n")
	for _, t := range tools {
		keys := make([]string, 0, len(t.Paths))
		for k := range t.Paths {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var ps []string
		for _, k := range keys {
			ps = append(ps, fmt.Sprintf("`%s` %d", k, t.Paths[k]))
		}
		w("- %s: %s", t.Name, strings.Join(ps, ", "))
		if t.Errors > 0 {
			w("; %d error responses (%s)", t.Errors, strings.Join(t.ErrorSamples, "; "))
		}
		if t.Exited != "" {
			w("; **%s**", t.Exited)
		}
		w("\n")
	}
}

// reading says what the tables show about aion-exec's prediction and the
// children's credentials.
func reading(w func(string, ...any), r Result) {
	sc := r.Settings.EffectiveScale
	w("\n")
	for _, t := range r.Tools {
		if t.Name != ToolAion || t.Cycle == nil {
			continue
		}
		w("aion-exec's first user lived %s with %d renewals: %.1f requests a simulated day in steady state, against\n",
			t.Cycle.SimLifetime, t.Cycle.Renewals, t.Cycle.RequestsPerDay)
		w("%.1f from its rules averaged over the splay and ≈%d in docs/leases.md's worked timeline: a renewal at two\n",
			r.AionModel.RequestsPerDay, r.DocsPrediction)
		w("thirds of the lease, moved earlier by up to a tenth of it (6 min), comes every ≈37 min on average, and a user\n")
		w("gets ≈%.0f renewals.\n\n", r.AionModel1h.Renewals)
	}
	for _, t := range r.Tools {
		var worst *Hold
		for i, h := range t.Holds {
			if h.Expired && (worst == nil || h.Lead < worst.Lead) {
				worst = &t.Holds[i]
			}
		}
		switch {
		case worst != nil:
			w("- %s: a child ran on user %s for %.2f s (%s simulated) after its lease had ended.\n", t.Name, worst.User,
				-worst.Lead.Seconds(), simDur(-worst.Lead, sc))
		case t.ExpiredHeld:
			w("- %s: a child started with a credential that no read of its token explains.\n", t.Name)
		case t.MinHoldLead != nil:
			w("- %s: every child had its next user %.2f s (%s simulated) or more before the old lease ended.\n", t.Name,
				t.MinHoldLead.Seconds(), simDur(*t.MinHoldLead, sc))
		default:
			w("- %s: no rotation reached the child in the run; it never ran on an expired user.\n", t.Name)
		}
	}
}

// caveats is the report's fixed text on what the compression changes,
// with the run's numbers.
func caveats(w func(string, ...any), r Result) {
	st := r.Settings
	ttl := durSeconds(st.TTL)
	sc := st.EffectiveScale
	sim := func(sec float64) string { return simDur(time.Duration(sec*float64(time.Second)), sc) }
	w("### How it was run, and what time compression changes\n\n")
	w("- Setup: `bench/leases.sh` (BENCH_LEASE_SCALE=%g, BENCH_LEASE_DAYS=%g). A Vault dev server with\n", st.Scale, st.Days)
	w("  `-dev-plugin-dir` (Vault's own PostgreSQL plugin), a PostgreSQL cluster of its own, role `app` with the\n")
	w("  integration tests' creation statement and a DROP ROLE revocation. Each tool has its own token (policy:\n")
	w("  `database/creds/app` read, `sys/leases/renew` and `sys/leases/revoke` update, token lookup-self/renew-self;\n")
	w("  no default policy), TTL %s of real time, renewable: it never expires nor needs renewing in a run, so\n", st.TokenTTL)
	w("  token traffic is what a tool does on its own at start. aion-exec: `AION_DB_SECRET_PATH=database/creds/app`,\n")
	w("  a `db.env.tmpl` of two variables; consul-template: exec mode, `{{ with secret \"database/creds/app\" }}` into a\n")
	w("  file of exports that `sh` sources before exec'ing the child, Vault defaults; Vault Agent: `token_file`\n")
	w("  auto-auth, two `env_template`s, `exec` with `restart_on_secret_changes = \"always\"`. All three restart the\n")
	w("  child with the new user (aion-exec with `AION_RESTART_ON=env`; by default it would send SIGHUP, which costs\n")
	w("  Vault the same). The child (`bench/cmd/benchchild`) logs each start with a hash of its variables, matched to\n")
	w("  the read (raw audit log) that obtained the user; each lease's end is Vault's own `sys/leases/lookup`\n")
	w("  `expire_time`, polled by root every second (root's requests are not counted).\n")
	w("- Fractions of the lease scale with it. aion-exec's rules are all fractions (renew at 2/3 less up to a tenth,\n")
	w("  rotate a tenth before the end less up to a tenth). consul-template and Vault Agent (which embeds\n")
	w("  consul-template) renew through Vault's `api.LifetimeWatcher`: it renews at once when it starts, which is right\n")
	w("  after every read (`dependency/vault_read.go`: `Fetch` → `renewSecret` → `fetchSecret`), then sleeps \"2/3 of\n")
	w("  the current lease duration plus 1/3 of the current grace period\" with a grace of 10–20%% of the lease\n")
	w("  (`calculateSleepDuration`, `calculateGrace` in `api/lifetime_watcher.go`), and gives the lease up as soon\n")
	w("  as the lease left, or the lease left after the next sleep, is within the grace; a new user is read at once.\n")
	w("  So the peers renew a little less often than aion-exec (every 2/3 + 1/30…1/15 of the lease, against\n")
	w("  aion-exec's 2/3 − 0…1/10), renew once more after every read, and rotate typically right after the first\n")
	w("  renewal that Vault caps, which can be long before the end; aion-exec renews until Vault caps the lease and\n")
	w("  reads the next user a tenth of the lease (+ up to a tenth) before the capped end.\n")
	w("- Absolute times do not scale. Vault Agent's exec server restarts the child 2 s after a change\n")
	w("  (`command/agent/exec/exec.go`: `debounceTimer = time.AfterFunc(2*time.Second, ...)`): %s simulated\n", sim(2))
	w("  here. At a real 1 h TTL it is nothing next to a grace of minutes; at %g× it can take the child's restart\n", sc)
	w("  past the old lease's end: a child of Vault Agent on an expired user for less than 2 s here is an artifact\n")
	w("  of the compression. Vault Agent also starts its first child 2 s late (the same timer).\n")
	w("- Vault reckons leases in whole seconds: the capped last lease of a user ended %s off its read plus the max\n", maxTTLOffsets(r))
	w("  TTL in this run, up to ±1 s (±%s simulated) at any scale. consul-template waits at least 100 ms\n", sim(1))
	w("  between updates of a dependency (`watch/view.go`, `minDelayBetweenUpdates`): %s simulated, negligible.\n", sim(0.1))
	w("  A %.0f s lease against millisecond request latencies leaves the fractions above intact.\n", ttl)
	w("- One run: the splays are random, so a tool's renewals per user vary by about one between runs.\n")
	w("- aion-exec revokes its lease when it stops (`AION_REVOKE_ON_EXIT`, one request, outside the counts); the\n")
	w("  peers leave their users to their TTL.\n\n")
}

// maxTTLOffsets lists, per tool, how far Vault's end of the first user's
// lease was from its read plus the max TTL.
func maxTTLOffsets(r Result) string {
	maxTTL := time.Duration(durSeconds(r.Settings.MaxTTL) * float64(time.Second))
	var parts []string
	for _, t := range r.Tools {
		if len(t.Credentials) < 2 || t.Credentials[0].ExpiresFrom != "vault" {
			continue
		}
		c := t.Credentials[0]
		parts = append(parts, fmt.Sprintf("%+.2f s (%s)", c.Expires.Sub(c.Read.Add(maxTTL)).Seconds(), t.Name))
	}
	if len(parts) == 0 {
		return "(no user reached it)"
	}
	return strings.Join(parts, ", ")
}

func durSeconds(s string) float64 {
	d, err := time.ParseDuration(s)
	if err != nil || d == 0 {
		return 1
	}
	return d.Seconds()
}

func ratio(n, base int) string {
	if base == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", float64(n)/float64(base))
}

func exitPaths(t ToolResult) string {
	if t.Exit.Total == 0 {
		return "none"
	}
	var p []string
	for _, c := range Classes {
		if n := t.Exit.Get(c); n > 0 {
			p = append(p, fmt.Sprintf("%d %s", n, c))
		}
	}
	return strings.Join(p, ", ")
}

func versions(v map[string]string) string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var s []string
	for _, k := range keys {
		s = append(s, k+" "+v[k])
	}
	if len(s) == 0 {
		return "not given"
	}
	return strings.Join(s, ", ")
}
