package bootstrap

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"slices"
	"testing"
	"time"
)

func parseCertPEM(t *testing.T, s string) *x509.Certificate {
	t.Helper()
	b, rest := pem.Decode([]byte(s))
	if b == nil || b.Type != "CERTIFICATE" || len(rest) != 0 {
		t.Fatalf("not exactly one PEM certificate:\n%s", s)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCAIssuesVerifiableServiceCerts(t *testing.T) {
	t.Parallel()
	now := time.Now()
	ca, err := newCA(now)
	if err != nil {
		t.Fatal(err)
	}
	caCert := parseCertPEM(t, ca.certPEM)
	if !caCert.IsCA || !caCert.MaxPathLenZero || caCert.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA: IsCA=%t MaxPathLenZero=%t KeyUsage=%v; want a CA that signs end entities only", caCert.IsCA, caCert.MaxPathLenZero, caCert.KeyUsage)
	}
	if pub, ok := caCert.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("CA key is %T, want ECDSA P-256", caCert.PublicKey)
	}
	if got := caCert.NotAfter.Sub(now); got < 364*24*time.Hour || got > 366*24*time.Hour {
		t.Errorf("CA valid for %s, want a year", got)
	}
	if _, err := tls.X509KeyPair([]byte(ca.certPEM), []byte(ca.keyPEM)); err != nil {
		t.Errorf("CA key does not match its certificate: %v", err)
	}

	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	serials := map[string]bool{}
	for _, svc := range []string{"control", "gateway"} {
		certPEM, keyPEM, err := ca.issue(svc, now)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM)); err != nil {
			t.Errorf("%s: key does not match certificate: %v", svc, err)
		}
		c := parseCertPEM(t, certPEM)
		if got, want := c.DNSNames, []string{svc, "localhost"}; !slices.Equal(got, want) {
			t.Errorf("%s: DNS SANs %v, want %v", svc, got, want)
		}
		if len(c.IPAddresses) != 2 || !c.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) || !c.IPAddresses[1].Equal(net.IPv6loopback) {
			t.Errorf("%s: IP SANs %v, want [127.0.0.1 ::1]", svc, c.IPAddresses)
		}
		if c.IsCA {
			t.Errorf("%s: certificate is a CA", svc)
		}
		if c.NotAfter.After(caCert.NotAfter) {
			t.Errorf("%s: expires %s, after its CA (%s)", svc, c.NotAfter, caCert.NotAfter)
		}
		serials[c.SerialNumber.String()] = true
		for _, name := range []string{svc, "localhost", "127.0.0.1", "::1"} {
			for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
				if _, err := c.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
					t.Errorf("%s: verify for %s, usage %v: %v", svc, name, usage, err)
				}
			}
		}
		if _, err := c.Verify(x509.VerifyOptions{DNSName: "example.com", Roots: roots}); err == nil {
			t.Errorf("%s: verifies for example.com, a name it does not hold", svc)
		}
		// A certificate of another CA must not verify: the roots matter.
		other, err := newCA(now)
		if err != nil {
			t.Fatal(err)
		}
		otherRoots := x509.NewCertPool()
		otherRoots.AddCert(other.cert)
		if _, err := c.Verify(x509.VerifyOptions{DNSName: svc, Roots: otherRoots}); err == nil {
			t.Errorf("%s: verifies against an unrelated CA", svc)
		}
	}
	if len(serials) != 2 {
		t.Errorf("serial numbers repeat: %v", serials)
	}
}

func TestParseCARoundTrip(t *testing.T) {
	t.Parallel()
	now := time.Now()
	ca, err := newCA(now)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := parseCA(ca.certPEM, ca.keyPEM)
	if err != nil {
		t.Fatalf("parseCA of a fresh CA: %v", err)
	}
	certPEM, _, err := loaded.issue("control", now)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	if _, err := parseCertPEM(t, certPEM).Verify(x509.VerifyOptions{DNSName: "control", Roots: roots}); err != nil {
		t.Errorf("certificate from the reloaded CA does not verify against the original: %v", err)
	}

	other, err := newCA(now)
	if err != nil {
		t.Fatal(err)
	}
	leafPEM, leafKey, err := ca.issue("gateway", now)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, cert, key string }{
		{"mismatched key", ca.certPEM, other.keyPEM},
		{"not a CA", leafPEM, leafKey},
		{"garbage", "nope", ca.keyPEM},
		{"empty key", ca.certPEM, ""},
	} {
		if _, err := parseCA(tc.cert, tc.key); err == nil {
			t.Errorf("parseCA(%s): no error", tc.name)
		}
	}
}

func TestJWTKeysAreAJWKSWithThumbprintKid(t *testing.T) {
	t.Parallel()
	k, err := newJWTKeys()
	if err != nil {
		t.Fatal(err)
	}
	// The secret goes through JSON on its way to Vault and to
	// jwt-public-keys.json: check it there.
	b, err := json.Marshal(k.jwks)
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []struct{ Kty, Crv, X, Y, Use, Alg, Kid string } `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 {
		t.Fatalf("JWKS has %d keys, want 1: %s", len(set.Keys), b)
	}
	jwk := set.Keys[0]
	if jwk.Kty != "EC" || jwk.Crv != "P-256" || jwk.Alg != "ES256" || jwk.Use != "sig" || jwk.Kid != k.kid {
		t.Errorf("JWK = %+v, want an EC P-256 ES256 signing key with kid %s", jwk, k.kid)
	}
	// RFC 7638 thumbprint of the example key layout.
	canon := `{"crv":"P-256","kty":"EC","x":"` + jwk.X + `","y":"` + jwk.Y + `"}`
	sum := sha256.Sum256([]byte(canon))
	if want := base64.RawURLEncoding.EncodeToString(sum[:]); jwk.Kid != want {
		t.Errorf("kid %s, want the RFC 7638 thumbprint %s", jwk.Kid, want)
	}
	// The public key in the JWKS is the private key's.
	blk, _ := pem.Decode([]byte(k.keyPEM))
	priv, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	x, _ := base64.RawURLEncoding.DecodeString(jwk.X)
	y, _ := base64.RawURLEncoding.DecodeString(jwk.Y)
	ec := priv.(*ecdsa.PrivateKey)
	point, _ := ec.PublicKey.Bytes()
	if new(big.Int).SetBytes(x).Cmp(new(big.Int).SetBytes(point[1:33])) != 0 || new(big.Int).SetBytes(y).Cmp(new(big.Int).SetBytes(point[33:])) != 0 {
		t.Error("JWKS public key is not the signing key's")
	}
	again, err := jwtKeysFromPEM(k.keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if again.kid != k.kid {
		t.Errorf("kid from the stored signing key %s, want %s", again.kid, k.kid)
	}
}

func TestRandomToken(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		s, err := randomToken()
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != 32 {
			t.Fatalf("token %d characters, want 32", len(s))
		}
		for _, r := range s {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				t.Fatalf("token has %q, want URL-safe characters only", r)
			}
		}
		if seen[s] {
			t.Fatal("token repeats")
		}
		seen[s] = true
	}
}
