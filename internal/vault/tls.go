package vault

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aionos/aion-exec/internal/sysexits"
)

// TLS is how the client trusts Vault's certificate and proves who it is,
// as the Vault CLI's VAULT_CACERT, VAULT_CAPATH, VAULT_CLIENT_CERT,
// VAULT_CLIENT_KEY, VAULT_TLS_SERVER_NAME and VAULT_SKIP_VERIFY do.
type TLS struct {
	CACert     string // PEM bundle
	CAPath     string // directory of PEM certificates
	ClientCert string // PEM certificate presented when Vault asks for one
	ClientKey  string
	ServerName string // verify against this name, not the address's host
	SkipVerify bool   // verify nothing (tests only)
}

// trust holds the TLS material, read from disk again whenever a file
// changed (cert-manager rotates CAs and client certificates in place): the
// CA pool at the next handshake, the client certificate when Vault next
// asks for it.
type trust struct {
	opts TLS

	mu        sync.Mutex
	pool      *x509.CertPool
	poolStamp string
	cert      *tls.Certificate
	certStamp string

	peer atomic.Pointer[x509.Certificate] // Vault's, from the last handshake
}

// dial opens a TLS connection to addr: the transport's DialTLSContext, so
// that the check knows the name it must verify (the address's host, or
// AION_VAULT_TLS_SERVER_NAME) even for an IP address.
func (t *trust) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	raw, err := dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	conn := tls.Client(raw, t.config(cmp.Or(t.opts.ServerName, host)))
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	return conn, nil
}

var dialer = &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}

// config is the TLS config of a connection to name. With a CA of our own,
// crypto/tls's check is replaced by one in VerifyConnection against the
// pool as it is now on disk (crypto/tls would pin the pool it was given);
// the checks are the same: chain, name, validity, server use.
func (t *trust) config(name string) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: name, NextProtos: []string{"http/1.1"},
		VerifyConnection: func(cs tls.ConnectionState) error { return t.verify(cs, name) }}
	if t.opts.ClientCert != "" {
		cfg.GetClientCertificate = t.clientCert
	}
	if t.opts.SkipVerify || t.ownCA() {
		cfg.InsecureSkipVerify = true // verified in VerifyConnection, or not at all with SkipVerify
	}
	return cfg
}

func (t *trust) ownCA() bool { return t.opts.CACert != "" || t.opts.CAPath != "" }

func (t *trust) verify(cs tls.ConnectionState, name string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("no certificate from Vault")
	}
	leaf := cs.PeerCertificates[0]
	t.peer.Store(leaf)
	if t.opts.SkipVerify || !t.ownCA() {
		return nil // crypto/tls verified it against the system's roots
	}
	pool, err := t.roots()
	if err != nil {
		return err
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err = leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, DNSName: name,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
	}
	return nil
}

// roots is the CA pool of CACert and CAPath, read again when they changed.
func (t *trust) roots() (*x509.CertPool, error) {
	files := []string{}
	if t.opts.CACert != "" {
		files = append(files, t.opts.CACert)
	}
	if t.opts.CAPath != "" {
		entries, err := os.ReadDir(t.opts.CAPath)
		if err != nil {
			return nil, fmt.Errorf("read AION_VAULT_CAPATH %s: %w", t.opts.CAPath, errors.Unwrap(err))
		}
		for _, e := range entries {
			if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
				files = append(files, filepath.Join(t.opts.CAPath, e.Name()))
			}
		}
	}
	stamp := stampOf(files...)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pool != nil && stamp == t.poolStamp {
		return t.pool, nil
	}
	pool := x509.NewCertPool()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read CA certificate %s: %w", f, errors.Unwrap(err))
		}
		if !pool.AppendCertsFromPEM(b) && f == t.opts.CACert {
			return nil, fmt.Errorf("AION_VAULT_CACERT %s holds no PEM certificate", f)
		}
	}
	t.pool, t.poolStamp = pool, stamp
	return pool, nil
}

func (t *trust) clientCert(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	stamp := stampOf(t.opts.ClientCert, t.opts.ClientKey)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cert != nil && stamp == t.certStamp {
		return t.cert, nil
	}
	c, err := tls.LoadX509KeyPair(t.opts.ClientCert, t.opts.ClientKey)
	if err != nil {
		return nil, fmt.Errorf("load AION_VAULT_CLIENT_CERT %s and AION_VAULT_CLIENT_KEY: %w", t.opts.ClientCert, err)
	}
	t.cert, t.certStamp = &c, stamp
	return &c, nil
}

// stampOf is the files' names, inodes, sizes and modification times: what
// changes when a file is rewritten or replaced. The inode matters: a file
// replaced by rename (cert-manager, a kubelet's ..data swap) within one
// coarse clock tick may keep size and mtime.
func stampOf(files ...string) string {
	var b strings.Builder
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			ino := uint64(0)
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				ino = st.Ino
			}
			fmt.Fprintf(&b, "%s %d %d %d\n", f, ino, fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return b.String()
}

// tlsFailure explains a failed handshake in one line: the address, what
// failed and the setting to fix, with its exit code. ok is false for
// anything that is not about certificates. These failures are never
// retried: waiting does not fix a certificate.
func tlsFailure(err error) (msg string, code int, ok bool) {
	addr, text := "Vault", err.Error()
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			addr = "Vault at " + u.Scheme + "://" + u.Host
		}
		text = ue.Err.Error() // ours may have replaced the message above it
	}
	// An alert Vault sent about our certificate arrives as a "remote
	// error" (crypto/tls keeps the alert type unexported).
	alert := ""
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "remote error" {
		alert = strings.TrimPrefix(oe.Err.Error(), "tls: ")
	}
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &unknown):
		issuer := ""
		if unknown.Cert != nil {
			issuer = fmt.Sprintf(" (issuer %q)", unknown.Cert.Issuer.CommonName)
		}
		return fmt.Sprintf("%s: its certificate is signed by an unknown authority%s; set AION_VAULT_CACERT or AION_VAULT_CAPATH to the CA that signed it", addr, issuer), sysexits.Usage, true
	case errors.As(err, &hostname):
		return fmt.Sprintf("%s: its certificate is not valid for %q (it is for %s); fix AION_VAULT_ADDR or set AION_VAULT_TLS_SERVER_NAME", addr, hostname.Host, certNames(hostname.Certificate)), sysexits.Usage, true
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return fmt.Sprintf("%s: its certificate is outside its validity (%s); renew Vault's certificate", addr, validity(invalid.Cert)), sysexits.Unavailable, true
	case errors.As(err, &invalid):
		return fmt.Sprintf("%s: its certificate is not valid: %v; fix Vault's certificate or AION_VAULT_CACERT", addr, invalid), sysexits.Usage, true
	case alert == "certificate required":
		return fmt.Sprintf("%s requires a client certificate; set AION_VAULT_CLIENT_CERT and AION_VAULT_CLIENT_KEY", addr), sysexits.Usage, true
	case alert == "bad certificate" || alert == "unknown certificate authority" || alert == "expired certificate" || alert == "certificate revoked":
		return fmt.Sprintf("%s refused the client certificate of AION_VAULT_CLIENT_CERT: %s", addr, alert), sysexits.NoPerm, true
	case strings.Contains(text, "Client sent an HTTP request to an HTTPS server"):
		return fmt.Sprintf("%s speaks TLS; use https:// in AION_VAULT_ADDR", addr), sysexits.Usage, true
	case strings.Contains(text, "server gave HTTP response to HTTPS client"):
		return fmt.Sprintf("%s speaks plain HTTP; use http:// in AION_VAULT_ADDR", addr), sysexits.Usage, true
	case strings.Contains(text, "load AION_VAULT_CLIENT_CERT"), strings.Contains(text, "AION_VAULT_CA"), strings.Contains(text, "read CA certificate"):
		return fmt.Sprintf("%s: %v", addr, innermost(err)), sysexits.Usage, true
	}
	return "", 0, false
}

func certNames(c *x509.Certificate) string {
	if c == nil {
		return "no name"
	}
	names := append([]string{}, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		names = []string{c.Subject.CommonName}
	}
	return strings.Join(names, ", ")
}

func validity(c *x509.Certificate) string {
	if c == nil {
		return "unknown"
	}
	return c.NotBefore.UTC().Format(time.RFC3339) + " to " + c.NotAfter.UTC().Format(time.RFC3339)
}

// innermost is the last error of err's chain: our own message, without
// the SDK's and net/http's wrappings.
func innermost(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		if strings.Contains(next.Error(), "AION_VAULT") || strings.Contains(next.Error(), "CA certificate") {
			err = next
			continue
		}
		return err
	}
}

// ServerCertificate is Vault's certificate from the last TLS handshake, or
// nil (plain HTTP, or no request yet), for `check`.
func (c *Client) ServerCertificate() *x509.Certificate { return c.trust.peer.Load() }
