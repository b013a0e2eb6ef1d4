// Package filewatch tells its owner that files it cares about changed on
// disk: templates, token and secret-ID files, JWTs. It watches directories,
// not files, because editors and Kubernetes replace files by rename (a
// ConfigMap or projected volume swaps its ..data symlink), which a watch on
// the file itself loses; and it gathers a burst of events (write, rename,
// chmod) into one notice. A watched directory that is removed, moved away
// or replaced (a deploy tool, a volume remounted, a symlink switched) is
// watched again when it is back, and its return counts as a change: a
// watch never ends in silence. It never reads the files.
package filewatch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/aionos/aion-exec/internal/backoff"
	"github.com/aionos/aion-exec/internal/statelog"
)

// Debounce is how long a burst of events must be quiet before it counts
// as one change.
const Debounce = 50 * time.Millisecond

// Recheck is how often each watched directory is checked for what inotify
// does not report: a volume unmounted or mounted over it (the kernel's
// IN_UNMOUNT reaches nobody through fsnotify), a symlink on its path
// switched to another directory, or a removal lost in an overflowed queue.
// One stat per directory.
const Recheck = 5 * time.Second

// Watcher delivers one value on C per settled burst of matching events,
// until Stop.
type Watcher struct {
	C       <-chan struct{}
	c       chan struct{}
	w       *fsnotify.Watcher
	dirs    []*dir
	match   func(path string) bool
	recheck time.Duration
	stop    context.CancelFunc
	done    chan struct{}
}

// dir is one watched directory.
type dir struct {
	path string
	id   fileID // what the path named when the watch was added
	lost bool   // gone, and being watched for its return
	// readd fails for a reason other than absence (the watch limit, a
	// permission, a symlink loop): said once, lest "watching for its
	// return" mislead about a directory that is there.
	readd statelog.State
}

// fileID tells one directory from another that took its path.
type fileID struct{ dev, ino uint64 }

// Start watches dirs until Stop or ctx ends; match decides which event
// paths count. A directory that cannot be watched is an error naming it
// (fs.inotify limits are the usual cause besides a missing directory). A
// watch error at run time (such as an overflowed event queue) is logged
// and counted as a change, so that nothing is missed. A directory that
// goes away later is logged once, watched again with backoff until it is
// back, logged once more, and its return counts as a change.
func Start(ctx context.Context, log *slog.Logger, dirs []string, match func(path string) bool) (*Watcher, error) {
	return start(ctx, log, dirs, match, Recheck)
}

func start(ctx context.Context, log *slog.Logger, dirs []string, match func(path string) bool, recheck time.Duration) (*Watcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("start file watcher (see fs.inotify.max_user_instances): %w", err)
	}
	c := make(chan struct{}, 1)
	w := &Watcher{C: c, c: c, w: fw, match: match, recheck: recheck, done: make(chan struct{})}
	for _, p := range dirs {
		d := &dir{path: filepath.Clean(p)}
		if w.dir(d.path) != nil {
			continue
		}
		if err := w.add(d); err != nil {
			fw.Close()
			return nil, fmt.Errorf("watch %s: %w", d.path, err)
		}
		w.dirs = append(w.dirs, d)
	}
	ctx, w.stop = context.WithCancel(ctx)
	go w.run(ctx, log)
	return w, nil
}

// Stop ends the watch and waits for its goroutine.
func (w *Watcher) Stop() {
	w.stop()
	<-w.done
}

func (w *Watcher) run(ctx context.Context, log *slog.Logger) {
	defer close(w.done)
	defer w.w.Close()
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	check := time.NewTimer(w.recheck)
	defer check.Stop()
	// Attempts to watch a lost directory again: a deploy tool puts it back
	// within moments, and an attempt is one failed system call.
	retry := backoff.Backoff{Min: Debounce, Max: time.Second}
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-w.w.Events:
			// The event is a hint, the path the truth: a late event about
			// a directory already watched again changes nothing.
			if d := w.dir(ev.Name); d != nil && ev.Has(fsnotify.Remove|fsnotify.Rename) && !d.lost && !w.intact(d) {
				d.lose(log)
				check.Reset(retry.Next())
			}
			if w.match(ev.Name) {
				settle.Reset(Debounce)
			}
		case err := <-w.w.Errors:
			log.Warn("file watch error; treating it as a change", "err", err)
			settle.Reset(Debounce)
		case <-check.C:
			if w.check(log) {
				settle.Reset(Debounce) // what changed while it was away is unknown
			}
			if w.anyLost() {
				check.Reset(retry.Next())
			} else {
				retry.Reset()
				check.Reset(w.recheck)
			}
		case <-settle.C:
			select {
			case w.c <- struct{}{}:
			default: // one is already waiting
			}
		}
	}
}

// add watches d's path and notes which directory it names. The identity
// is taken first: should the path change hands between the two, the next
// check sees a stranger and watches again, where the other order would
// watch the old directory under the new one's name for good.
func (w *Watcher) add(d *dir) error {
	id, err := identify(d.path)
	if err != nil {
		return err
	}
	// A watch left on what the path named before (moved away, or covered
	// by a mount) would deliver its events under this path.
	_ = w.w.Remove(d.path)
	if err := w.w.Add(d.path); err != nil {
		return err
	}
	d.id, d.lost = id, false
	return nil
}

// lose marks d as gone; callers log it once, while it is not lost yet.
func (d *dir) lose(log *slog.Logger) {
	d.lost = true
	log.Warn("watched directory is gone; watching for its return", "dir", d.path)
}

// intact reports whether d's path still names the directory that is
// watched, and the watch is still there (fsnotify drops it, unreported, on
// IN_UNMOUNT, and on IN_MOVE_SELF even if the directory comes straight
// back).
func (w *Watcher) intact(d *dir) bool {
	id, err := identify(d.path)
	return err == nil && id == d.id && slices.Contains(w.w.WatchList(), d.path)
}

// check watches the lost directories again and verifies the others, and
// reports whether one came back.
func (w *Watcher) check(log *slog.Logger) bool {
	back := false
	for _, d := range w.dirs {
		if !d.lost {
			if w.intact(d) {
				continue
			}
			d.lose(log)
		}
		err := w.add(d)
		switch {
		case err == nil:
			log.Info("watched directory is back; reading it again", "dir", d.path)
			d.readd, back = statelog.State{}, true
		case !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR):
			d.readd.Fail(log, slog.LevelWarn, "watch the directory again failed; retrying", err, "dir", d.path)
		}
	}
	return back
}

func (w *Watcher) dir(path string) *dir {
	for _, d := range w.dirs {
		if d.path == path {
			return d
		}
	}
	return nil
}

func (w *Watcher) anyLost() bool {
	return slices.ContainsFunc(w.dirs, func(d *dir) bool { return d.lost })
}

// identify names the directory at path, following symlinks as the watch
// does. The error is the cause alone: callers name the path.
func identify(path string) (fileID, error) {
	fi, err := os.Stat(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fileID{}, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, nil
	}
	return fileID{uint64(st.Dev), uint64(st.Ino)}, nil
}

// Files matches events on any of files, and on the ..data swap of a
// Kubernetes volume in a file's directory.
func Files(files ...string) func(string) bool {
	return func(name string) bool {
		for _, f := range files {
			if f == "" {
				continue
			}
			if filepath.Clean(name) == filepath.Clean(f) ||
				filepath.Dir(name) == filepath.Dir(f) && filepath.Base(name) == "..data" {
				return true
			}
		}
		return false
	}
}

// Dir matches any event directly in dir: a ConfigMap update shows only as
// a swap of its ..data symlink.
func Dir(dir string) func(string) bool {
	dir = filepath.Clean(dir)
	return func(name string) bool { return filepath.Dir(name) == dir }
}

// DirsOf lists the directories of files, without duplicates or blanks.
func DirsOf(files ...string) []string {
	var dirs []string
	seen := map[string]bool{}
	for _, f := range files {
		if f == "" {
			continue
		}
		if d := filepath.Dir(f); !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	return dirs
}
