// Package filewatch tells its owner that files it cares about changed on
// disk: templates, token and secret-ID files, JWTs. It watches directories,
// not files, because editors and Kubernetes replace files by rename (a
// ConfigMap or projected volume swaps its ..data symlink), which a watch on
// the file itself loses; and it gathers a burst of events (write, rename,
// chmod) into one notice. It never reads the files.
package filewatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Debounce is how long a burst of events must be quiet before it counts
// as one change.
const Debounce = 50 * time.Millisecond

// Watcher delivers one value on C per settled burst of matching events,
// until Stop.
type Watcher struct {
	C     <-chan struct{}
	c     chan struct{}
	w     *fsnotify.Watcher
	match func(path string) bool
	stop  context.CancelFunc
	done  chan struct{}
}

// Start watches dirs until Stop or ctx ends; match decides which event
// paths count. A directory that cannot be watched is an error naming it
// (fs.inotify limits are the usual cause besides a missing directory). A
// watch error at run time (such as an overflowed event queue) is logged
// and counted as a change, so that nothing is missed.
func Start(ctx context.Context, log *slog.Logger, dirs []string, match func(path string) bool) (*Watcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("start file watcher (see fs.inotify.max_user_instances): %w", err)
	}
	for _, d := range dirs {
		if err := fw.Add(d); err != nil && !errors.Is(err, os.ErrExist) {
			fw.Close()
			return nil, fmt.Errorf("watch %s: %w", d, err)
		}
	}
	c := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(ctx)
	w := &Watcher{C: c, c: c, w: fw, match: match, stop: cancel, done: make(chan struct{})}
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
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-w.w.Events:
			if w.match(ev.Name) {
				settle.Reset(Debounce)
			}
		case err := <-w.w.Errors:
			log.Warn("file watch error; treating it as a change", "err", err)
			settle.Reset(Debounce)
		case <-settle.C:
			select {
			case w.c <- struct{}{}:
			default: // one is already waiting
			}
		}
	}
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
