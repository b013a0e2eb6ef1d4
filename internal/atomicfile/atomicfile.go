// Package atomicfile replaces files so that no reader ever sees half of
// one, the way consul-template's AtomicWrite does, with a private mode by
// default. It is the one writer of files that hold secrets: rendered
// outputs and dev bootstrap's unseal and env files. Errors never hold the
// data.
package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Owner is who a file is handed to after it is written (a child that runs
// as another user must read its rendered files). Nil keeps the writer's.
type Owner struct{ UID, GID int }

// Write replaces path with data: a temporary file in the same directory,
// chmod and chown before any byte is written, fsync, rename over path, then
// fsync of the directory so that the rename survives a crash. A file whose
// bytes are equal is not rewritten (same inode, same mtime: a watcher on it
// sees nothing); only its mode and owner are corrected. changed reports
// whether the bytes changed. The directory must exist.
func Write(path string, data []byte, mode os.FileMode, owner *Owner) (changed bool, err error) {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return false, fix(path, mode, owner)
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return false, fmt.Errorf("write %s: %w", base, Cause(err))
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(mode.Perm()); err != nil {
		return false, fmt.Errorf("write %s: chmod: %w", base, Cause(err))
	}
	if owner != nil {
		if err = tmp.Chown(owner.UID, owner.GID); err != nil {
			return false, fmt.Errorf("write %s: chown to %d:%d: %w", base, owner.UID, owner.GID, Cause(err))
		}
	}
	if _, err = tmp.Write(data); err != nil {
		return false, fmt.Errorf("write %s: %w", base, Cause(err))
	}
	if err = tmp.Sync(); err != nil {
		return false, fmt.Errorf("write %s: fsync: %w", base, Cause(err))
	}
	if err = tmp.Close(); err != nil {
		return false, fmt.Errorf("write %s: %w", base, Cause(err))
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return false, fmt.Errorf("write %s: rename into place: %w", base, Cause(err))
	}
	if err := syncDir(dir); err != nil {
		return true, fmt.Errorf("write %s: fsync its directory: %w", base, Cause(err))
	}
	return true, nil
}

// fix gives an unchanged file the mode and owner asked for.
func fix(path string, mode os.FileMode, owner *Owner) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), Cause(err))
	}
	if fi.Mode().Perm() != mode.Perm() {
		if err := os.Chmod(path, mode.Perm()); err != nil {
			return fmt.Errorf("write %s: chmod: %w", filepath.Base(path), Cause(err))
		}
	}
	if owner != nil {
		if err := os.Chown(path, owner.UID, owner.GID); err != nil {
			return fmt.Errorf("write %s: chown to %d:%d: %w", filepath.Base(path), owner.UID, owner.GID, Cause(err))
		}
	}
	return nil
}

// MkdirPrivate creates dir with mode 0700 (and its parents), or tightens an
// existing one to 0700, and hands it to owner when set.
func MkdirPrivate(dir string, owner *Owner) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create directory %s: %w", dir, Cause(err))
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("create directory %s: %w", dir, Cause(err))
	}
	if !fi.IsDir() {
		return fmt.Errorf("create directory %s: it exists and is not a directory", dir)
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("restrict directory %s to mode 0700: %w", dir, Cause(err))
		}
	}
	if owner != nil {
		if err := os.Chown(dir, owner.UID, owner.GID); err != nil {
			return fmt.Errorf("hand directory %s to %d:%d: %w", dir, owner.UID, owner.GID, Cause(err))
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Cause strips the operation and path that an *fs.PathError or
// *os.LinkError repeats, for messages that name the file once.
func Cause(err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		return pe.Err
	case errors.As(err, &le):
		return le.Err
	}
	return err
}
