package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aionos/aion-exec/bench/internal/kit"
)

// Variant is how a change reaches the child.
type Variant string

const (
	Reload  Variant = "reload"  // the child gets SIGHUP and keeps running
	Restart Variant = "restart" // the child is stopped and started with the new environment
)

// tool is one way of starting the child with the same secrets.
type tool struct {
	Name     string
	Binary   string    // what runs; empty for the floor
	Variants []Variant // change delivery modes it offers
	// command builds the wrapper's command line for n secrets; configs go
	// into dir, which is the tool's own and outlives the run.
	command func(b *bench, n int, v Variant, dir, events string) (*exec.Cmd, error)
	// inProcess, when set, replaces command: the launch measurement times
	// this function instead of a process.
	inProcess func(b *bench, n int) error
}

func newCmd(name string, args []string, env []string, dir string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = env
	cmd.Dir = dir
	return cmd
}

func floorTool() tool {
	return tool{
		Name: "floor",
		command: func(b *bench, n int, v Variant, dir, events string) (*exec.Cmd, error) {
			return newCmd(b.child, nil, kit.ToolEnv(dir, events), dir), nil
		},
	}
}

// vaultFloorTool is what Vault itself takes to answer the requests that
// aion-exec needs at start (token lookup, mount listing, then the n reads,
// 8 at a time) from a bare HTTP client on fresh connections: whatever a
// wrapper adds to launch → child start beyond this and the child's own start
// is the wrapper's doing.
func vaultFloorTool() tool {
	return tool{
		Name: "vault-floor",
		inProcess: func(b *bench, n int) error {
			tr := &http.Transport{MaxIdleConnsPerHost: 8}
			defer tr.CloseIdleConnections()
			token, err := b.tokenFor("vault-floor", n)
			if err != nil {
				return err
			}
			v := &vaultAPI{Addr: b.vault.Addr, Token: token, HC: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
			ctx := context.Background()
			if err := v.Do(ctx, "GET", "auth/token/lookup-self", nil, nil); err != nil {
				return err
			}
			if err := v.Do(ctx, "GET", "sys/internal/ui/mounts", nil, nil); err != nil {
				return err
			}
			sem := make(chan struct{}, 8)
			errs := make([]error, n+1)
			var wg sync.WaitGroup
			for i := 1; i <= n; i++ {
				sem <- struct{}{}
				wg.Go(func() {
					defer func() { <-sem }()
					errs[i] = v.Do(ctx, "GET", "secret/data/bench/"+kit.SecretName(i), nil, nil)
				})
			}
			wg.Wait()
			return errors.Join(errs...)
		},
	}
}

func aionTool(bin string) tool {
	return tool{
		Name: "aion-exec", Binary: bin, Variants: []Variant{Reload, Restart},
		command: func(b *bench, n int, v Variant, dir, events string) (*exec.Cmd, error) {
			tdir := filepath.Join(dir, "templates")
			if err := os.MkdirAll(tdir, 0o700); err != nil {
				return nil, err
			}
			if err := os.WriteFile(filepath.Join(tdir, "bench.env.tmpl"), []byte(kit.EnvTemplate(n)), 0o600); err != nil {
				return nil, err
			}
			token, err := b.tokenFor("aion-exec", n)
			if err != nil {
				return nil, err
			}
			restartOn := "never"
			if v == Restart {
				restartOn = "env"
			}
			env := append(kit.ToolEnv(dir, events),
				"AION_VAULT_ADDR="+b.vault.Addr,
				"AION_VAULT_TOKEN="+token,
				"AION_TEMPLATES_DIR="+tdir,
				"AION_RENDER_DIR="+filepath.Join(dir, "render"),
				"AION_POLL_INTERVAL="+b.interval.String(),
				"AION_RESTART_ON="+restartOn,
				"AION_LOG_LEVEL=warn",
			)
			return newCmd(bin, []string{"--", b.child}, append(env, kit.SecretVars("bench", n)...), dir), nil
		},
	}
}

// aionNoWatchTool is aion-exec without AION_TEMPLATES_DIR: no directory is
// watched, so its exit is not held up by the kernel's teardown of an inotify
// watch (see BenchmarkStop in internal/filewatch). Only the exit is timed:
// the child gets no bench variables.
func aionNoWatchTool(bin string) tool {
	t := aionTool(bin)
	full := t.command
	t.Name, t.Variants = "aion-exec-nowatch", nil
	t.command = func(b *bench, n int, v Variant, dir, events string) (*exec.Cmd, error) {
		cmd, err := full(b, n, v, dir, events)
		if err != nil {
			return nil, err
		}
		cmd.Env = slices.DeleteFunc(cmd.Env, func(kv string) bool { return strings.HasPrefix(kv, "AION_TEMPLATES_DIR=") })
		return cmd, nil
	}
	return t
}

// agentTool is Vault Agent's process supervisor mode: one env_template per
// variable (that is its unit), token_file auto-auth, exec with restarts.
func agentTool(bin string) tool {
	return tool{
		Name: "vault-agent", Binary: bin, Variants: []Variant{Restart},
		command: func(b *bench, n int, v Variant, dir, events string) (*exec.Cmd, error) {
			token, err := b.tokenFor("vault-agent", n)
			if err != nil {
				return nil, err
			}
			tokenFile := filepath.Join(dir, "token")
			if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
				return nil, err
			}
			var c strings.Builder
			fmt.Fprintf(&c, "vault {\n  address = %q\n}\n", b.vault.Addr)
			fmt.Fprintf(&c, "auto_auth {\n  method \"token_file\" {\n    config = {\n      token_file_path = %q\n    }\n  }\n}\n", tokenFile)
			fmt.Fprintf(&c, "template_config {\n  static_secret_render_interval = %q\n  exit_on_retry_failure = true\n}\n", b.interval.String())
			for i := 1; i <= n; i++ {
				for f := 1; f <= kit.Fields; f++ {
					contents := fmt.Sprintf(`{{ with secret "secret/data/bench/%s" }}{{ .Data.data.f%d }}{{ end }}`, kit.SecretName(i), f)
					fmt.Fprintf(&c, "env_template %q {\n  contents = %q\n  error_on_missing_key = true\n}\n", kit.EnvName(i, f), contents)
				}
			}
			fmt.Fprintf(&c, "exec {\n  command = [%q]\n  restart_on_secret_changes = \"always\"\n  restart_stop_signal = \"SIGTERM\"\n}\n", b.child)
			cfg := filepath.Join(dir, "agent.hcl")
			if err := os.WriteFile(cfg, []byte(c.String()), 0o600); err != nil {
				return nil, err
			}
			return newCmd(bin, []string{"agent", "-config=" + cfg, "-log-level=warn"}, kit.ToolEnv(dir, events), dir), nil
		},
	}
}

// ctTool is consul-template's exec mode. consul-template cannot put a
// rendered value into the child's environment, so the closest equivalent
// is its documented pattern: render a file of exports and have the exec'd
// shell source it and exec the child. The shell's start is part of its cost.
//
// KV v2 secrets carry no lease, so consul-template re-reads them after
// vault.default_lease_duration (5 min by default) times a 0.85–0.95 stagger;
// default_lease_duration = interval with lease_renewal_threshold = 1 makes
// that the same ~interval the other tools poll at.
func ctTool(bin string) tool {
	return tool{
		Name: "consul-template", Binary: bin, Variants: []Variant{Reload, Restart},
		command: func(b *bench, n int, v Variant, dir, events string) (*exec.Cmd, error) {
			token, err := b.tokenFor("consul-template", n)
			if err != nil {
				return nil, err
			}
			envFile := filepath.Join(dir, "secrets.env")
			var t strings.Builder
			for i := 1; i <= n; i++ {
				fmt.Fprintf(&t, "{{ with secret \"secret/data/bench/%s\" }}", kit.SecretName(i))
				for f := 1; f <= kit.Fields; f++ {
					fmt.Fprintf(&t, "export %s='{{ .Data.data.f%d }}'\n", kit.EnvName(i, f), f)
				}
				t.WriteString("{{ end }}")
			}
			var c strings.Builder
			fmt.Fprintf(&c, "log_level = \"warn\"\n")
			fmt.Fprintf(&c, "vault {\n  address = %q\n  token = %q\n  renew_token = false\n  default_lease_duration = %q\n  lease_renewal_threshold = 1.0\n}\n",
				b.vault.Addr, token, b.interval.String())
			fmt.Fprintf(&c, "template {\n  contents = %q\n  destination = %q\n  perms = 0600\n  error_on_missing_key = true\n}\n", t.String(), envFile)
			reload := ""
			if v == Reload {
				reload = "  reload_signal = \"SIGHUP\"\n"
			}
			fmt.Fprintf(&c, "exec {\n  command = [\"/bin/sh\", \"-c\", %q]\n  kill_signal = \"SIGTERM\"\n  kill_timeout = \"5s\"\n%s}\n",
				fmt.Sprintf(". '%s' && exec '%s'", envFile, b.child), reload)
			cfg := filepath.Join(dir, "ct.hcl")
			if err := os.WriteFile(cfg, []byte(c.String()), 0o600); err != nil {
				return nil, err
			}
			return newCmd(bin, []string{"-config=" + cfg}, kit.ToolEnv(dir, events), dir), nil
		},
	}
}
