package render

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aionos/aion-exec/internal/sysexits"
)

// validate checks a file output by its extension before it may replace the
// old file: .json must parse, .pem must be PEM blocks and nothing else.
// Other files are opaque.
func validate(name string, data []byte) error {
	switch filepath.Ext(name) {
	case ".json":
		var syntax *json.SyntaxError
		if err := json.Unmarshal(data, new(json.RawMessage)); errors.As(err, &syntax) {
			// json's own message quotes the offending character, which
			// may be part of a secret; the offset is enough.
			return fmt.Errorf("%s is not valid JSON (syntax error at byte %d)", name, syntax.Offset)
		} else if err != nil {
			return fmt.Errorf("%s is not valid JSON", name)
		}
	case ".pem":
		blocks := 0
		for rest := bytes.TrimSpace(data); len(rest) > 0; rest = bytes.TrimSpace(rest) {
			// pem.Decode skips text before a block; here there must be none.
			if !bytes.HasPrefix(rest, []byte("-----BEGIN ")) {
				return fmt.Errorf("%s holds data that is not a PEM block", name)
			}
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				return fmt.Errorf("%s holds a malformed PEM block", name)
			}
			blocks++
		}
		if blocks == 0 {
			return fmt.Errorf("%s holds no PEM block", name)
		}
	}
	return nil
}

// WriteFiles writes every file output atomically into its directory,
// creating the directory with mode 0700 if missing, and returns the names
// of the files it replaced. A file whose bytes and mode are unchanged is not
// touched. All files are validated before any is written, so a bad render
// leaves every old file in place.
func (o *Output) WriteFiles() (written []string, err error) {
	for _, f := range o.Files {
		if err := validate(f.Name, f.Data); err != nil {
			return nil, sysexits.Wrap(sysexits.DataErr, fmt.Errorf("write files: %w", err))
		}
	}
	for _, f := range o.Files {
		changed, err := writeFile(f)
		if changed {
			written = append(written, f.Name)
		}
		if err != nil {
			return written, sysexits.Wrap(sysexits.CantCreate, err)
		}
	}
	return written, nil
}

// writeFile replaces f.Path the way consul-template's AtomicWrite does: a
// temporary file in the same directory, fsync, chmod, rename, then fsync
// of the directory so the rename survives a crash. Readers see the old or
// the new file, never a part.
func writeFile(f File) (changed bool, err error) {
	if fi, err := os.Stat(f.Path); err == nil && fi.Mode().Perm() == f.Mode.Perm() {
		if old, err := os.ReadFile(f.Path); err == nil && bytes.Equal(old, f.Data) {
			return false, nil
		}
	}
	dir := filepath.Dir(f.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("create render dir: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+f.Name+".*.tmp")
	if err != nil {
		return false, fmt.Errorf("write %s: %w", f.Name, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(f.Data); err != nil {
		return false, fmt.Errorf("write %s: %w", f.Name, err)
	}
	if err = tmp.Sync(); err != nil {
		return false, fmt.Errorf("write %s: %w", f.Name, err)
	}
	if err = tmp.Chmod(f.Mode.Perm()); err != nil {
		return false, fmt.Errorf("write %s: %w", f.Name, err)
	}
	if err = tmp.Close(); err != nil {
		return false, fmt.Errorf("write %s: %w", f.Name, err)
	}
	if err = os.Rename(tmp.Name(), f.Path); err != nil {
		return false, fmt.Errorf("write %s: %w", f.Name, err)
	}
	if err := syncDir(dir); err != nil {
		return true, fmt.Errorf("write %s: sync render dir: %w", f.Name, err)
	}
	return true, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
