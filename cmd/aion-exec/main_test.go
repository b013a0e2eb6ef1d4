package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/aionos/aion-exec/internal/config"
)

// setenv gives the test exactly env of the AION_* and VAULT_* variables:
// config reads the process environment (envconfig), so these tests use
// t.Setenv and do not run in parallel.
func setenv(t *testing.T, env []string) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AION_") || strings.HasPrefix(k, "VAULT_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

func TestRun(t *testing.T) {
	base := []string{"AION_VAULT_ADDR=http://127.0.0.1:1", "AION_VAULT_TOKEN=hvs.never-printed"}
	tests := []struct {
		name       string
		args, env  []string
		code       int
		stdout     string
		stderr     string
		notInError string
	}{
		{"version", []string{"version"}, nil, 0, "aion-exec ", "", ""},
		{"help", []string{"--help"}, nil, 0, "AION_POLL_INTERVAL", "", ""},
		{"help lists secret flag", []string{"-h"}, nil, 0, "--secret NAME=PATH", "", ""},
		{"unknown command", []string{"frobnicate"}, base, 64, "", `unknown command "frobnicate"`, ""},
		{"no command", nil, base, 64, "", "no command to run", ""},
		{"once takes no command", []string{"once", "--", "sh"}, base, 64, "", `once takes no command, got "sh"`, ""},
		{"dev without bootstrap", []string{"dev"}, base, 64, "", "usage: aion-exec dev bootstrap", ""},
		{"bad flag", []string{"--no-such-flag", "--", "true"}, base, 64, "", "flag provided but not defined: -no-such-flag", ""},
		{"no token flag", []string{"--vault-token=x", "--", "true"}, base, 64, "", "flag provided but not defined: -vault-token", ""},
		{"bad secret flag", []string{"--secret", "db", "--", "true"}, base, 64, "", `want NAME=PATH with NAME of letters, digits, _ or -, got "db"`, ""},
		{"flag wins over env", []string{"--poll-interval=soon", "check"}, append(base, "AION_POLL_INTERVAL=5s"), 64, "", `--poll-interval is "soon"`, "hvs.never-printed"},
		{"config error", []string{"check"}, []string{"AION_VAULT_TOKEN=hvs.never-printed"}, 64, "", "aion-exec: AION_VAULT_ADDR is not set", "hvs.never-printed"},
		{"secret flag dashes", []string{"--secret", "gateway-api-keys=a/${AION_ENV}/b", "check"}, base, 64, "", "AION_GATEWAY_API_KEYS_SECRET_PATH uses ${AION_ENV}", ""},
		{"secret flag bad name", []string{"--secret", "a.b=x", "check"}, base, 64, "", `got "a.b=x"`, ""},
		{"secret flag path checked", []string{"--secret", "db=a/${AION_ENV}/b", "check"}, base, 64, "", "AION_DB_SECRET_PATH uses ${AION_ENV} but AION_ENV is not set", ""},
		{"vault down", []string{"--startup-timeout=1s", "once"}, base, 69, "", "gave up after AION_STARTUP_TIMEOUT=1s", "hvs.never-printed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setenv(t, tt.env)
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, streams{nil, &stdout, &stderr})
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstderr: %s", code, tt.code, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.stdout, stdout.String())
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, stderr.String())
			}
			if tt.notInError != "" && strings.Contains(stderr.String()+stdout.String(), tt.notInError) {
				t.Errorf("output shows %q", tt.notInError)
			}
		})
	}
}

func TestChildEnv(t *testing.T) {
	cfg := &config.Config{}
	environ := []string{"PATH=/bin", "AION_VAULT_TOKEN=t", "VAULT_TOKEN=t", "PGHOST=old", "KEEP=1"}
	got := strings.Join(childEnv(cfg, environ, []string{"PGHOST=new"}), " ")
	if got != "PATH=/bin KEEP=1 PGHOST=new" {
		t.Errorf("childEnv = %s", got)
	}
	cfg.PassVaultCreds.V = true
	got = strings.Join(childEnv(cfg, environ, nil), " ")
	if !strings.Contains(got, "AION_VAULT_TOKEN=t") {
		t.Errorf("PassVaultCreds: %s", got)
	}
}
