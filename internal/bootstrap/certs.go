package bootstrap

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// Development PKI: one CA (ECDSA P-256, a year), service certificates signed
// by it for mTLS between services and TLS to them from a laptop. P-256
// because every TLS stack the platform uses (Go, Node, Python, PostgreSQL)
// speaks it; Ed25519 is still missing from some.
const (
	caValidity   = 365 * 24 * time.Hour
	certValidity = 365 * 24 * time.Hour
	// backdate covers clock skew between the laptop and containers.
	backdate = 5 * time.Minute
)

// devCA is a CA that can issue certificates.
type devCA struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM string
	keyPEM  string
}

func newKey() (*ecdsa.PrivateKey, string, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", fmt.Errorf("generate an ECDSA P-256 key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, "", fmt.Errorf("encode an ECDSA P-256 key: %w", err)
	}
	return k, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
}

func serialNumber() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
}

// newCA generates a fresh self-signed development CA that may sign only end
// entity certificates (path length 0).
func newCA(now time.Time) (*devCA, error) {
	key, keyPEM, err := newKey()
	if err != nil {
		return nil, err
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Organization: []string{"AION-OS development"},
			CommonName:   "AION-OS development CA " + now.UTC().Format("2006-01-02"),
		},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create the development CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &devCA{cert: cert, key: key, certPEM: encodeCert(der), keyPEM: keyPEM}, nil
}

func encodeCert(der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// parseCA loads a CA from the PEM of the dev-ca secret, so that certificates
// added later chain to the CA that is already trusted.
func parseCA(certPEM, keyPEM string) (*devCA, error) {
	cb, _ := pem.Decode([]byte(certPEM))
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, errors.New("certificate is not a PEM CERTIFICATE")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("certificate is not a CA certificate")
	}
	kb, _ := pem.Decode([]byte(keyPEM))
	if kb == nil {
		return nil, errors.New("private_key is not PEM")
	}
	var key any
	switch kb.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(kb.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(kb.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(kb.Bytes)
	default:
		err = fmt.Errorf("unsupported PEM type %q", kb.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse private_key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, errors.New("private_key cannot sign")
	}
	if pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
		return nil, errors.New("private_key does not match certificate")
	}
	return &devCA{cert: cert, key: signer, certPEM: certPEM, keyPEM: keyPEM}, nil
}

// issue signs a certificate for service, usable as TLS server and client
// (mTLS), for the names a developer and a compose network reach it by:
// the service name, localhost, 127.0.0.1 and ::1. It never outlives the CA.
func (ca *devCA) issue(service string, now time.Time) (certPEM, keyPEM string, err error) {
	key, keyPEM, err := newKey()
	if err != nil {
		return "", "", err
	}
	serial, err := serialNumber()
	if err != nil {
		return "", "", err
	}
	notAfter := now.Add(certValidity)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Organization: []string{"AION-OS development"},
			CommonName:   service,
		},
		DNSNames:    []string{service, "localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:   now.Add(-backdate),
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return "", "", fmt.Errorf("sign the %s certificate with the development CA: %w", service, err)
	}
	return encodeCert(der), keyPEM, nil
}

// jwtKeys is a fresh ES256 signing key: the public half as a JWKS (RFC 7517)
// for the jwt secret, which the built-in template renders verbatim to
// jwt-public-keys.json, and the private half as PKCS#8 PEM for jwt-signing.
// The key ID is the RFC 7638 thumbprint, so it names the key by its content.
type jwtKeys struct {
	jwks   map[string]any
	kid    string
	keyPEM string
}

func newJWTKeys() (*jwtKeys, error) {
	key, keyPEM, err := newKey()
	if err != nil {
		return nil, err
	}
	return jwtKeysOf(key, keyPEM)
}

func jwtKeysOf(key *ecdsa.PrivateKey, keyPEM string) (*jwtKeys, error) {
	if key.Curve != elliptic.P256() {
		return nil, errors.New("the JWT key is not on curve P-256, which ES256 needs")
	}
	point, err := key.PublicKey.Bytes() // 0x04 || X || Y, 32 bytes each for P-256
	if err != nil {
		return nil, fmt.Errorf("encode the JWT public key: %w", err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	x, y := b64(point[1:33]), b64(point[33:65])
	// RFC 7638: the required members, sorted, no whitespace.
	canon, _ := json.Marshal(struct {
		Crv string `json:"crv"`
		Kty string `json:"kty"`
		X   string `json:"x"`
		Y   string `json:"y"`
	}{"P-256", "EC", x, y})
	sum := sha256.Sum256(canon)
	kid := b64(sum[:])
	jwk := map[string]any{"kty": "EC", "crv": "P-256", "x": x, "y": y, "use": "sig", "alg": "ES256", "kid": kid}
	return &jwtKeys{jwks: map[string]any{"keys": []any{jwk}}, kid: kid, keyPEM: keyPEM}, nil
}
