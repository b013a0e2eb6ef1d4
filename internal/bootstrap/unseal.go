package bootstrap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/hashicorp/vault/api"

	"github.com/aionos/aion-exec/internal/atomicfile"
	"github.com/aionos/aion-exec/internal/sysexits"
	"github.com/aionos/aion-exec/internal/vault"
)

// unsealFile is the JSON of `vault operator init -format=json`, which
// `jq -r '.unseal_keys_b64[0]'` and `vault operator unseal` understand.
// Keys and KeysBase64 read the file the Python script wrote (hvac's init
// answer); they are never written.
type unsealFile struct {
	UnsealKeysB64   []string `json:"unseal_keys_b64"`
	UnsealKeysHex   []string `json:"unseal_keys_hex"`
	UnsealShares    int      `json:"unseal_shares"`
	UnsealThreshold int      `json:"unseal_threshold"`
	RootToken       string   `json:"root_token"`

	Keys       []string `json:"keys,omitempty"`
	KeysBase64 []string `json:"keys_base64,omitempty"`
}

func (u *unsealFile) keys() []string {
	for _, k := range [][]string{u.UnsealKeysB64, u.KeysBase64, u.UnsealKeysHex, u.Keys} {
		if len(k) > 0 {
			return k
		}
	}
	return nil
}

// readUnsealFile returns (nil, nil) when the file does not exist.
func readUnsealFile(path string) (*unsealFile, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, sysexits.Wrap(sysexits.Usage, fmt.Errorf("read unseal file %s: %w", path, atomicfile.Cause(err)))
	}
	var u unsealFile
	if err := json.Unmarshal(data, &u); err != nil {
		return nil, sysexits.Wrap(sysexits.Usage, fmt.Errorf("read unseal file %s: not the JSON of `vault operator init`: %v", path, err))
	}
	if len(u.keys()) == 0 || u.RootToken == "" {
		return nil, sysexits.Wrap(sysexits.Usage, fmt.Errorf("read unseal file %s: it holds no unseal_keys_b64 or no root_token", path))
	}
	return &u, nil
}

// unseal brings Vault to an active, unsealed state and logs in with the
// root token: it initialises a new Vault (saving the key first thing),
// unseals a sealed one, and leaves an unsealed one alone.
func (b *bootstrapper) unseal(ctx context.Context) error {
	o := &b.opts
	waitCtx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	h, err := b.waitHealth(waitCtx, "answering", func(*api.HealthResponse) bool { return true })
	if err != nil {
		return err
	}
	o.Log.Info("vault answered", "addr", o.Addr, "state", healthState(h), "version", h.Version)
	path := o.unsealFile()
	saved, err := readUnsealFile(path)
	if err != nil {
		return err
	}

	if !h.Initialized {
		if saved, err = b.initialise(ctx, saved != nil); err != nil {
			return err
		}
		h.Sealed = true
	} else if saved == nil {
		if h.Sealed {
			return sysexits.Wrap(sysexits.Unavailable, fmt.Errorf("unseal Vault at %s: it is initialised and sealed, and its unseal key file %s does not exist; "+
				"unseal it by hand or reset its storage and run again", o.Addr, path))
		}
		return sysexits.Wrap(sysexits.Usage, fmt.Errorf("log in to Vault at %s: it is initialised, but %s, which holds the root token dev bootstrap needs, does not exist; "+
			"it was not initialised by dev bootstrap in this directory (run it where %s is, or reset the Vault storage)", o.Addr, path, path))
	} else {
		if err := b.keepPrivate(path); err != nil {
			return err
		}
		b.sum.add("vault", o.Addr, "initialised before (keys in "+path+")")
	}

	if h.Sealed {
		if err := b.submitKeys(ctx, saved, path); err != nil {
			return err
		}
	} else {
		b.sum.add("vault", o.Addr, "unsealed before")
	}
	if _, err := b.waitHealth(waitCtx, "active", func(h *api.HealthResponse) bool {
		return h.Initialized && !h.Sealed && !h.Standby
	}); err != nil {
		return err
	}

	b.api.SetToken(saved.RootToken)
	b.api.SetNamespace(o.Namespace)
	if _, err := b.api.Auth().Token().LookupSelfWithContext(ctx); err != nil {
		err = vault.Fail("log in with the root token from "+path, err)
		if sysexits.Code(err) == sysexits.NoPerm {
			err = sysexits.Wrap(sysexits.NoPerm, fmt.Errorf("log in with the root token from %s: Vault at %s does not know it; "+
				"the file belongs to another Vault (or the root token was revoked)", path, o.Addr))
		}
		return err
	}
	return nil
}

// keepPrivate restores modes 0700 and 0600 on the state directory and the
// unseal file if someone loosened them: they hold the root token.
func (b *bootstrapper) keepPrivate(path string) error {
	if st, err := os.Stat(b.opts.StateDir); err == nil && st.Mode().Perm() != 0o700 {
		b.opts.Log.Warn("state directory was accessible to others; restricting it to 0700", "dir", b.opts.StateDir, "mode", fmt.Sprintf("%04o", st.Mode().Perm()))
		if err := ensurePrivateDir(b.opts.StateDir); err != nil {
			return err
		}
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm() != 0o600 {
		b.opts.Log.Warn("unseal file was accessible to others; restricting it to 0600", "file", path, "mode", fmt.Sprintf("%04o", st.Mode().Perm()))
		if err := os.Chmod(path, 0o600); err != nil {
			return sysexits.Wrap(sysexits.CantCreate, fmt.Errorf("restrict unseal file %s to mode 0600: %w", path, atomicfile.Cause(err)))
		}
	}
	return nil
}

// initialise runs sys/init with one key share and saves the answer before
// anything else can fail. The state directory is prepared first: keys that
// cannot be saved are keys lost.
func (b *bootstrapper) initialise(ctx context.Context, replacing bool) (*unsealFile, error) {
	o := &b.opts
	path := o.unsealFile()
	if err := ensurePrivateDir(o.StateDir); err != nil {
		return nil, err
	}
	if replacing {
		// Keys of a Vault whose storage is gone: useless, but not ours to
		// delete.
		old := path + ".old"
		if err := os.Rename(path, old); err != nil {
			return nil, sysexits.Wrap(sysexits.CantCreate, fmt.Errorf("move the stale unseal file %s aside: %w", path, atomicfile.Cause(err)))
		}
		o.Log.Warn("vault is not initialised but an unseal file exists; kept it as .old", "file", path, "old", old)
	}
	resp, err := b.api.Sys().InitWithContext(ctx, &api.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		return nil, vault.Fail("initialise Vault at "+o.Addr, err)
	}
	u := &unsealFile{
		UnsealKeysB64: resp.KeysB64, UnsealKeysHex: resp.Keys,
		UnsealShares: 1, UnsealThreshold: 1, RootToken: resp.RootToken,
	}
	data, _ := json.MarshalIndent(u, "", "  ")
	if _, err := atomicfile.Write(path, append(data, '\n'), 0o600, nil); err != nil {
		return nil, sysexits.Wrap(sysexits.CantCreate, fmt.Errorf("save the unseal key and root token of the just-initialised Vault at %s: %w; "+
			"they are lost: reset its storage and run again", o.Addr, err))
	}
	o.Log.Info("initialised vault", "addr", o.Addr, "key_shares", 1, "file", path)
	b.sum.add("vault", o.Addr, "initialised (unseal key and root token in "+path+")")
	return u, nil
}

func (b *bootstrapper) submitKeys(ctx context.Context, u *unsealFile, path string) error {
	for _, k := range u.keys() {
		st, err := b.api.Sys().UnsealWithContext(ctx, k)
		if err != nil {
			err = vault.Fail("unseal Vault at "+b.opts.Addr+" with the key in "+path, err)
			return sysexits.Wrap(sysexits.Unavailable, err)
		}
		if !st.Sealed {
			b.opts.Log.Info("unsealed vault", "addr", b.opts.Addr)
			b.sum.add("vault", b.opts.Addr, "unsealed")
			return nil
		}
	}
	return sysexits.Wrap(sysexits.Unavailable, fmt.Errorf("unseal Vault at %s: still sealed after every key in %s; the keys belong to another Vault", b.opts.Addr, path))
}
