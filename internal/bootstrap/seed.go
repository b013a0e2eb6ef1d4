package bootstrap

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/vault/api"

	"github.com/aionos/aion-exec/internal/sysexits"
	"github.com/aionos/aion-exec/internal/vault"
)

// SecretPrefix is where the dev secrets live inside the KV mount: the
// platform's aionos/<AION_ENV>/<name> with AION_ENV=dev.
const SecretPrefix = "aionos/" + Env + "/"

// seed is one development secret and how to make its first version.
// gen returns nil data to skip a secret that cannot be made consistent
// with what exists.
type seed struct {
	name string
	gen  func(*seeder) (map[string]any, error)
}

// seeds, in the order they are created: the CA before what it signs.
//
// Payloads follow the contract: db {username, password, host, port,
// database}, minio {endpoint, access_key, secret_key, secure, bucket},
// admin-token {token}, gateway-api-keys {"<key>": "<client>"}, TLS material
// {certificate, private_key, ca_chain}. The jwt secret is a JWKS with one
// ES256 public key; its private half is in jwt-signing, which no service
// policy grants (only the dev token reads it, to mint test tokens). mtls-ca
// holds the CA certificate only, for verifying peers; the CA's key is in
// dev-ca, again for the dev token alone.
var seeds = []seed{
	{"dev-ca", func(s *seeder) (map[string]any, error) {
		ca, err := s.ca()
		if err != nil {
			return nil, err
		}
		return map[string]any{"certificate": ca.certPEM, "private_key": ca.keyPEM}, nil
	}},
	{"mtls-ca", func(s *seeder) (map[string]any, error) {
		ca, err := s.ca()
		if err != nil {
			return nil, err
		}
		return map[string]any{"certificate": ca.certPEM}, nil
	}},
	{"control-tls", func(s *seeder) (map[string]any, error) { return s.tls("control") }},
	{"gateway-tls", func(s *seeder) (map[string]any, error) { return s.tls("gateway") }},
	{"db-main", func(s *seeder) (map[string]any, error) {
		pw, err := randomToken()
		return map[string]any{"username": "aionos", "password": pw, "host": "127.0.0.1", "port": 5432, "database": "aionos"}, err
	}},
	{"minio", func(s *seeder) (map[string]any, error) {
		sk, err := randomToken()
		return map[string]any{"endpoint": "127.0.0.1:9000", "access_key": "aionos", "secret_key": sk, "secure": "false", "bucket": "aionos"}, err
	}},
	{"admin-token", func(s *seeder) (map[string]any, error) {
		t, err := randomToken()
		return map[string]any{"token": t}, err
	}},
	{"gateway-api-keys", func(s *seeder) (map[string]any, error) {
		keys := map[string]any{}
		for _, client := range []string{"console", "developer"} {
			k, err := randomToken()
			if err != nil {
				return nil, err
			}
			keys[k] = client
		}
		return keys, nil
	}},
	{"jwt-signing", func(s *seeder) (map[string]any, error) {
		if s.present["jwt"] {
			// A new private key would not match the public key the
			// gateway already trusts.
			s.b.opts.Log.Warn("not creating jwt-signing: jwt exists and its private key is unknown", "secret", s.b.display("jwt"))
			return nil, nil
		}
		k, err := s.jwtKeys()
		if err != nil {
			return nil, err
		}
		return map[string]any{"kid": k.kid, "alg": "ES256", "private_key": k.keyPEM}, nil
	}},
	{"jwt", func(s *seeder) (map[string]any, error) {
		k, err := s.jwtKeys()
		if err != nil {
			return nil, err
		}
		return k.jwks, nil
	}},
}

// SecretNames lists the seeded secrets, each at <mount>/aionos/dev/<name>.
func SecretNames() []string {
	out := make([]string, len(seeds))
	for i, s := range seeds {
		out[i] = s.name
	}
	return out
}

// seeder makes the CA and the JWT key once per run, loading them from Vault
// when they exist so that what is added later matches what is there.
type seeder struct {
	b       *bootstrapper
	ctx     context.Context
	present map[string]bool
	devCA   *devCA
	jwt     *jwtKeys
}

func (s *seeder) ca() (*devCA, error) {
	if s.devCA != nil {
		return s.devCA, nil
	}
	if s.present["dev-ca"] {
		data, err := s.b.kvRead(s.ctx, "dev-ca")
		if err != nil {
			return nil, err
		}
		cert, _ := data["certificate"].(string)
		key, _ := data["private_key"].(string)
		ca, err := parseCA(cert, key)
		if err != nil {
			return nil, sysexits.Wrap(sysexits.DataErr, fmt.Errorf("load the development CA from %s to sign missing certificates: %w", s.b.display("dev-ca"), err))
		}
		s.devCA = ca
		return ca, nil
	}
	ca, err := newCA(s.b.opts.now())
	if err != nil {
		return nil, err
	}
	s.devCA = ca
	return ca, nil
}

func (s *seeder) tls(service string) (map[string]any, error) {
	ca, err := s.ca()
	if err != nil {
		return nil, err
	}
	cert, key, err := ca.issue(service, s.b.opts.now())
	if err != nil {
		return nil, err
	}
	return map[string]any{"certificate": cert, "private_key": key, "ca_chain": ca.certPEM}, nil
}

func (s *seeder) jwtKeys() (*jwtKeys, error) {
	if s.jwt != nil {
		return s.jwt, nil
	}
	if s.present["jwt-signing"] {
		// jwt is missing but its private half exists: publish that key.
		data, err := s.b.kvRead(s.ctx, "jwt-signing")
		if err != nil {
			return nil, err
		}
		keyPEM, _ := data["private_key"].(string)
		k, err := jwtKeysFromPEM(keyPEM)
		if err != nil {
			return nil, sysexits.Wrap(sysexits.DataErr, fmt.Errorf("load the JWT signing key from %s: %w", s.b.display("jwt-signing"), err))
		}
		s.jwt = k
		return k, nil
	}
	k, err := newJWTKeys()
	if err != nil {
		return nil, err
	}
	s.jwt = k
	return k, nil
}

func jwtKeysFromPEM(keyPEM string) (*jwtKeys, error) {
	blk, _ := pem.Decode([]byte(keyPEM))
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, errors.New("private_key is not a PEM PRIVATE KEY")
	}
	key, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse private_key: %w", err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("private_key is not an ECDSA P-256 key")
	}
	return jwtKeysOf(ec, keyPEM)
}

// randomToken is 192 bits from crypto/rand as 32 URL-safe characters: safe
// in a URL, a shell word and a MinIO secret key (at most 40 characters).
func randomToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// display names a secret the way `vault kv get` takes it.
func (b *bootstrapper) display(name string) string {
	return b.opts.KVMount + "/" + SecretPrefix + name
}

// seedSecrets creates every missing dev secret and leaves every existing
// one alone, even one whose current version was deleted: a developer did
// that. Writes use check-and-set 0, so a secret created meanwhile is never
// overwritten either.
func (b *bootstrapper) seedSecrets(ctx context.Context) error {
	s := &seeder{b: b, ctx: ctx, present: map[string]bool{}}
	for _, sd := range seeds {
		meta, err := b.api.Logical().ReadWithContext(ctx, b.opts.KVMount+"/metadata/"+SecretPrefix+sd.name)
		if err != nil {
			return vault.Fail("look up secret "+b.display(sd.name), err)
		}
		s.present[sd.name] = meta != nil
	}
	for _, sd := range seeds {
		if s.present[sd.name] {
			b.sum.add("secret", b.display(sd.name), "present")
			continue
		}
		data, err := sd.gen(s)
		if err != nil {
			if sysexits.Code(err) == sysexits.Software {
				err = fmt.Errorf("make secret %s: %w", b.display(sd.name), err)
			}
			return err
		}
		if data == nil {
			b.sum.add("secret", b.display(sd.name), "skipped")
			continue
		}
		_, err = b.api.Logical().WriteWithContext(ctx, b.opts.KVMount+"/data/"+SecretPrefix+sd.name,
			map[string]any{"data": data, "options": map[string]any{"cas": 0}})
		var re *api.ResponseError
		if errors.As(err, &re) && re.StatusCode == 400 && strings.Contains(strings.Join(re.Errors, " "), "check-and-set") {
			b.opts.Log.Info("secret appeared meanwhile; left alone", "secret", b.display(sd.name))
			b.sum.add("secret", b.display(sd.name), "present")
			continue
		}
		if err != nil {
			return vault.Fail("write secret "+b.display(sd.name), err)
		}
		b.opts.Log.Info("created secret", "secret", b.display(sd.name))
		b.sum.add("secret", b.display(sd.name), "created")
	}
	return nil
}

// kvRead reads the current data of a dev secret.
func (b *bootstrapper) kvRead(ctx context.Context, name string) (map[string]any, error) {
	s, err := b.api.Logical().ReadWithContext(ctx, b.opts.KVMount+"/data/"+SecretPrefix+name)
	if err != nil {
		return nil, vault.Fail("read secret "+b.display(name), err)
	}
	var data map[string]any
	if s != nil {
		data, _ = s.Data["data"].(map[string]any)
	}
	if data == nil {
		return nil, sysexits.Wrap(sysexits.DataErr, fmt.Errorf("read secret %s: its current version holds no data (deleted?)", b.display(name)))
	}
	return data, nil
}
