//go:build integration

package integration

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// jwtSigner is an ES256 key pair a test makes, to sign JWTs by hand for
// Vault's jwt auth method (and for Kubernetes logins, which these tests
// make against the jwt method mounted at auth/kubernetes: -tags minimal
// Vault has no kubernetes method).
type jwtSigner struct {
	PublicKeyPEM string // for jwt_validation_pubkeys
	key          *ecdsa.PrivateKey
}

func newJWTSigner(t testing.TB) *jwtSigner {
	t.Helper()
	key := newKey(t)
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return &jwtSigner{PublicKeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), key: key}
}

// sign makes a compact JWS of claims: base64url(header).base64url(claims).
// base64url(r || s), the form RFC 7518 gives ES256.
func (s *jwtSigner) sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signed := enc(map[string]string{"alg": "ES256", "typ": "JWT"}) + "." + enc(claims)
	digest := sha256.Sum256([]byte(signed))
	r, sig, err := ecdsa.Sign(rand.Reader, s.key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	rs := append(r.FillBytes(make([]byte, 32)), sig.FillBytes(make([]byte, 32))...)
	return signed + "." + base64.RawURLEncoding.EncodeToString(rs)
}

// jwtClaims are registered claims valid from a minute ago until exp.
func jwtClaims(iss, sub string, aud []string, exp time.Time) map[string]any {
	now := time.Now()
	return map[string]any{"iss": iss, "sub": sub, "aud": aud, "iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": exp.Unix()}
}

// serviceAccountClaims are the claims of a Kubernetes service account
// token for namespace/name, in the flat form of the legacy secret tokens
// (which jwt's bound_claims reach by key) and the nested form of projected
// ones.
func serviceAccountClaims(namespace, name string, aud []string, exp time.Time) map[string]any {
	c := jwtClaims("https://kubernetes.default.svc.cluster.local", "system:serviceaccount:"+namespace+":"+name, aud, exp)
	uid := fmt.Sprintf("%08x-0000-4000-8000-000000000000", time.Now().UnixNano()&0xffffffff)
	c["kubernetes.io/serviceaccount/namespace"] = namespace
	c["kubernetes.io/serviceaccount/service-account.name"] = name
	c["kubernetes.io/serviceaccount/service-account.uid"] = uid
	c["kubernetes.io"] = map[string]any{"namespace": namespace, "serviceaccount": map[string]any{"name": name, "uid": uid}}
	return c
}

// JWTAuth enables the jwt method at auth/<mount> (unless it is there),
// trusting pubKeyPEM, and writes a role: role_type jwt, user_claim sub,
// bound_audiences, bound_claims (nil for none), token_policies and
// token_ttl. Vault's leeways stay at their defaults: a JWT is taken up to
// clock_skew_leeway (60s) past its exp; expiration_leeway (150s) counts
// only for a JWT without exp.
func (v *Vault) JWTAuth(t testing.TB, mount, pubKeyPEM, role string, boundAudiences []string, boundClaims map[string]any, policies []string, ttl time.Duration) {
	t.Helper()
	auths, err := v.Root.Sys().ListAuth()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := auths[mount+"/"]; !ok {
		if err := v.Root.Sys().EnableAuthWithOptions(mount, &api.EnableAuthOptions{Type: "jwt"}); err != nil {
			t.Fatalf("enable jwt at auth/%s: %v", mount, err)
		}
	}
	v.Write("auth/"+mount+"/config", map[string]any{"jwt_validation_pubkeys": []string{pubKeyPEM}})
	r := map[string]any{
		"role_type": "jwt", "user_claim": "sub", "bound_audiences": boundAudiences,
		"token_policies": policies, "token_ttl": int(ttl.Seconds()),
	}
	if boundClaims != nil {
		r["bound_claims"] = boundClaims
	}
	v.Write("auth/"+mount+"/role/"+role, r)
}

// TestJWTHarness logs in with hand-signed JWTs: at auth/jwt with
// registered claims, and at auth/kubernetes with a service account's;
// an expired JWT, another audience and another service account are
// refused.
func TestJWTHarness(t *testing.T) {
	t.Parallel()
	v := startVault(t)
	signer := newJWTSigner(t)
	v.JWTAuth(t, "jwt", signer.PublicKeyPEM, "app", []string{"vault"}, nil, []string{"svc"}, 10*time.Minute)
	v.JWTAuth(t, "kubernetes", signer.PublicKeyPEM, "control", []string{"vault"},
		map[string]any{"kubernetes.io/serviceaccount/namespace": "aionos", "kubernetes.io/serviceaccount/service-account.name": "control"},
		[]string{"control"}, 10*time.Minute)
	login := func(mount, role string, claims map[string]any) (*api.Secret, error) {
		return v.Client("").Logical().Write("auth/"+mount+"/login", map[string]any{"role": role, "jwt": signer.sign(t, claims)})
	}
	in := time.Now().Add(5 * time.Minute)

	s, err := login("jwt", "app", jwtClaims("https://issuer.test", "svc-1", []string{"vault"}, in))
	if err != nil {
		t.Fatalf("jwt login: %v", err)
	}
	if pols := s.Auth.TokenPolicies; len(pols) != 2 || pols[0] != "default" || pols[1] != "svc" || s.Auth.LeaseDuration != 600 {
		t.Errorf("jwt login: policies %v ttl %ds, want [default svc] and 600s", pols, s.Auth.LeaseDuration)
	}
	if _, err := login("kubernetes", "control", serviceAccountClaims("aionos", "control", []string{"vault"}, in)); err != nil {
		t.Errorf("kubernetes login: %v", err)
	}
	// Within the 60s clock skew leeway an expired JWT still logs in.
	if _, err := login("jwt", "app", jwtClaims("https://issuer.test", "svc-1", []string{"vault"}, time.Now().Add(-30*time.Second))); err != nil {
		t.Errorf("jwt login 30s after exp: %v, want the clock skew leeway to let it in", err)
	}
	for _, tc := range []struct {
		name, mount, role string
		claims            map[string]any
		want              string
	}{
		{"expired", "jwt", "app", jwtClaims("https://issuer.test", "svc-1", []string{"vault"}, time.Now().Add(-10*time.Minute)),
			"error validating token: invalid expiration time (exp) claim: token is expired"},
		{"other audience", "jwt", "app", jwtClaims("https://issuer.test", "svc-1", []string{"elsewhere"}, in),
			"error validating token: invalid audience (aud) claim: audience claim does not match any expected audience"},
		{"other service account", "kubernetes", "control", serviceAccountClaims("aionos", "gateway", []string{"vault"}, in),
			`error validating claims: claim "kubernetes.io/serviceaccount/service-account.name" does not match any associated bound claim values`},
	} {
		if _, err := login(tc.mount, tc.role, tc.claims); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}
