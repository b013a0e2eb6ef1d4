//go:build integration

package integration

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// An operator revokes every token of a login method (`vault token revoke
// -mode=path auth/<mount>/login`) while the child runs: aion-exec says once
// that its token is gone, logs in again with its credentials, and the next
// rotation reaches the child within two poll intervals of its write. Polls
// start at most an interval apart (jittered downwards, timed start to
// start), so the first poll after the write comes within one interval, and
// it finds the token dead, logs in and reads the new password in the same
// pass: the second interval is room for that pass's requests on a loaded
// machine. A poll whose login failed would back off up to another interval
// before the next try, and miss the bound: that is a failure here.
func TestRevokedTokenIsReplaced(t *testing.T) {
	t.Parallel()
	const poll = time.Second
	for _, method := range []string{"approle", "jwt", "cert"} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			v, s := jwtVault(t)
			env, _ := watchEnv(t, v, "AION_POLL_INTERVAL="+poll.String())
			env = withoutToken(env)
			switch method {
			case "approle":
				env = append(env, "AION_VAULT_APPROLE_ROLE_ID="+enableAppRole(t, v),
					"AION_VAULT_APPROLE_SECRET_ID="+v.Write("auth/approle/role/gateway/secret-id", nil).Data["secret_id"].(string))
			case "jwt":
				file := filepath.Join(t.TempDir(), "jwt")
				writeJWT(t, file, s.sign(t, jwtClaims("https://ci.example", "build-7", []string{"vault"}, time.Now().Add(time.Hour))))
				env = append(env, "AION_VAULT_AUTH_METHOD=jwt", "AION_VAULT_AUTH_ROLE=app", "AION_VAULT_JWT_FILE="+file)
			case "cert":
				cert, key := certLogin(t, v)
				env = append(env, "AION_VAULT_AUTH_METHOD=cert", "AION_VAULT_CLIENT_CERT="+cert, "AION_VAULT_CLIENT_KEY="+key)
			}
			r := supervise(t, env, "node", childJS())
			pid := pidOf(t, r.stdout.waitFor(t, "ready", 20*time.Second))
			revoked := time.Now()
			v.Write("sys/leases/revoke-prefix/auth/"+method+"/login", nil)
			written := time.Now() // before the write: its own time counts against aion-exec
			putPassword(v, "pw-2")
			// The deadline only ends a wait that failed; the bound is below.
			hup := r.stdout.waitFor(t, "sighup", 5*poll)
			took := time.Since(written)
			if !strings.Contains(hup, "pw-2") || pidOf(t, hup) != pid {
				t.Fatalf("after the revocation: %s", hup)
			}
			t.Logf("the rotation reached the child %s after its write, %s after the revocation", took.Round(time.Millisecond), time.Since(revoked).Round(time.Millisecond))
			if took > 2*poll {
				t.Errorf("the rotation reached the child %s after its write; want within two poll intervals (%s)", took, 2*poll)
			}
			logs := r.stderr.text()
			if n := strings.Count(logs, "vault token no longer valid"); n != 1 || strings.Contains(logs, "policies lack") {
				t.Errorf("want one 'token no longer valid' line and no 'policies lack', got %d:\n%s", n, logs)
			}
		})
	}
}

// putPassword rotates only the password of the db secret: a reload, not a
// restart.
func putPassword(v *Vault, pw string) {
	v.t.Helper()
	if _, err := v.Root.KVv2("secret").Patch(context.Background(), "aionos/dev/db-main", map[string]any{"password": pw}); err != nil {
		v.t.Fatalf("patch the db password: %v", err)
	}
}

// With token auth there is nothing to log in with but the token file: once
// the token is revoked, aion-exec says so once and waits; a new token
// written to the file is picked up at once.
func TestRevokedTokenNewTokenFile(t *testing.T) {
	t.Parallel()
	v := seeded(t)
	file := filepath.Join(t.TempDir(), "token")
	first := v.Token([]string{"svc"}, "1h", true)
	write(t, file, first)
	env, _ := watchEnv(t, v, "AION_POLL_INTERVAL=300ms")
	env = append(withoutToken(env), "AION_VAULT_TOKEN_FILE="+file)
	r := supervise(t, env, "node", childJS())
	r.stdout.waitFor(t, "ready", 20*time.Second)

	if err := v.Root.Auth().Token().RevokeTree(first); err != nil {
		t.Fatal(err)
	}
	r.stderr.waitFor(t, "vault token no longer valid", 5*time.Second)
	r.stderr.waitFor(t, "the token is invalid, expired or revoked", 5*time.Second)
	for range 3 {
		r.stderr.waitFor(t, "msg=polled prog=aion-exec ok=false", 5*time.Second)
	}
	writeJWT(t, file, v.Token([]string{"svc"}, "1h", true))
	r.stderr.waitFor(t, "vault login renewed", 5*time.Second)
	putPassword(v, "pw-2")
	if hup := r.stdout.waitFor(t, "sighup", 5*time.Second); !strings.Contains(hup, "pw-2") {
		t.Fatalf("after the new token: %s", hup)
	}
	logs := r.stderr.text()
	if n := strings.Count(logs, "vault token no longer valid"); n != 1 {
		t.Errorf("want one 'token no longer valid' line while the token was gone, got %d:\n%s", n, logs)
	}
	if n := strings.Count(logs, "vault read failed"); n != 1 {
		t.Errorf("want one 'vault read failed' line while the token was gone, got %d:\n%s", n, logs)
	}
}
