// Package watch tells egressgate when a file it was configured from
// changes, so that it reloads: the manifest, CA files, token files and the
// host's Codex auth.json.
//
// It watches directories, not files. Editors and Codex replace a file by
// writing a temporary one and renaming it over the old, which ends an
// inotify watch on the old inode; a watch on the directory sees the rename
// and keeps working. Events are then filtered by the watched names.
//
// A file whose directory does not exist yet (a secrets/ directory made
// later) is watched through its nearest existing ancestor, and the watch
// moves down as directories appear. A watched file that is a symlink, as
// in a Kubernetes secret volume, changes whenever an entry of its own
// directory is created, removed or renamed; a symlink's target edited in
// place in another directory is not seen.
package watch

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// maxBurstFactor bounds how long a burst may postpone its report: a file
// rewritten without pause must still be reloaded, just less often.
const maxBurstFactor = 10

// maxRearm bounds re-planning when directories keep appearing and
// vanishing while the watches are placed.
const maxRearm = 8

// ErrClosed is returned by Set after Close.
var ErrClosed = errors.New("watch: watcher closed")

// Watcher reports changes to a set of files. Create one with New; it is
// safe for concurrent use.
type Watcher struct {
	log      *slog.Logger
	debounce time.Duration
	clock    clock
	fsw      *fsnotify.Watcher
	changes  chan struct{}
	done     chan struct{} // closed by Close to stop run
	stopped  chan struct{} // closed when run has returned
	close    sync.Once

	mu     sync.Mutex // guards the fields below, shared by Set and run
	closed bool
	set    fileSet
	dirs   map[string]bool // directories added to fsw
	linked map[string]bool // see layout.linked
}

// New starts a watcher that reports changes to the files given to Set,
// coalesced: after the first event it waits for debounce of quiet, so a
// burst of writes and renames yields one report. The debounce is the only
// delay added between a change and its report; zero reports at once. A
// nil log discards.
func New(log *slog.Logger, debounce time.Duration) (*Watcher, error) {
	return newWatcher(log, debounce, realClock{})
}

// newWatcher is New on the given clock.
func newWatcher(log *slog.Logger, debounce time.Duration, clk clock) (*Watcher, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	w := &Watcher{
		log:      log,
		debounce: max(debounce, 0),
		clock:    clk,
		fsw:      fsw,
		changes:  make(chan struct{}, 1),
		done:     make(chan struct{}),
		stopped:  make(chan struct{}),
		dirs:     map[string]bool{},
		linked:   map[string]bool{},
	}
	go w.run()
	return w, nil
}

// Changes delivers one value per coalesced burst of changes. It holds at
// most one: a report not yet taken already means "reload", so later ones
// are dropped rather than queued, and the watcher never blocks on a slow
// reader. It is closed once Close has stopped the watcher.
func (w *Watcher) Changes() <-chan struct{} { return w.changes }

// Set replaces the watched files, and the directories whose membership is
// watched (a file created, removed or renamed in one is a change); each
// must be an absolute path. A file or directory that does not exist yet is
// watched for. Directories in both
// the old and the new set stay watched throughout, so a caller that loads
// its files and then calls Set misses a change in between only to a file
// new to the set. On error, the files that could be watched still are.
func (w *Watcher) Set(files []string, dirs ...string) error {
	set, err := newFileSet(files, dirs)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	w.set = set
	moved, err := w.rearm()
	if moved {
		// The directories changed while the watches were placed: a file
		// may have appeared unseen.
		w.notify()
	}
	w.log.Debug("watching files", "files", len(set.files), "dirs", slices.Sorted(maps.Keys(w.dirs)))
	return err
}

// Close stops the watcher and waits for its goroutine to return. It is
// safe to call more than once.
func (w *Watcher) Close() error {
	var err error
	w.close.Do(func() {
		w.mu.Lock()
		w.closed = true
		w.mu.Unlock()
		close(w.done)
		err = w.fsw.Close()
		<-w.stopped
		close(w.changes)
	})
	return err
}

// run turns fsnotify events into coalesced reports until Close.
func (w *Watcher) run() {
	defer close(w.stopped)
	quiet := w.clock.NewTimer() // armed by the first event of a burst
	defer quiet.Stop()
	var burst time.Time // when the pending burst began; zero when none
	errs := w.fsw.Errors
	for {
		select {
		case <-w.done:
			return
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			if w.handle(ev) {
				burst = w.wait(quiet, burst)
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil // closing; Events closes too
				continue
			}
			if w.handleError(err) {
				burst = w.wait(quiet, burst)
			}
		case <-quiet.C():
			burst = time.Time{}
			w.notify()
		}
	}
}

// wait (re)starts the quiet timer after an event of a burst that began at
// burst (zero for a new burst), and returns when the burst began.
func (w *Watcher) wait(quiet timer, burst time.Time) time.Time {
	now := w.clock.Now()
	if burst.IsZero() {
		burst = now
	}
	// Since Go 1.23 Reset also discards a tick not yet received.
	quiet.Reset(delay(w.debounce, burst, now))
	return burst
}

// delay is how long to wait for quiet after an event at now, in a burst
// that began at burst: each event restarts the debounce, but the report
// comes no later than maxBurstFactor debounces after the burst began.
func delay(debounce time.Duration, burst, now time.Time) time.Duration {
	end := burst.Add(maxBurstFactor * debounce)
	if now.Add(debounce).After(end) {
		return max(end.Sub(now), 0)
	}
	return debounce
}

func (w *Watcher) notify() {
	select {
	case w.changes <- struct{}{}:
	default: // a report is already waiting
	}
}

// handle reports whether ev changes a watched file, re-arming the
// watches first when it moved the directories they hang on.
func (w *Watcher) handle(ev fsnotify.Event) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	// Clean, because fsnotify joins "/" and a name into "//name".
	name := filepath.Clean(ev.Name)
	changed, rearm := w.set.classify(name, ev.Op, w.linked)
	if !changed {
		return false
	}
	w.log.Debug("watched file changed", "path", name, "op", ev.Op.String())
	if rearm {
		if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
			// fsnotify has dropped its watch on a removed or moved
			// directory; forget it too, so that rearm adds it again if a
			// new one takes its place.
			delete(w.dirs, name)
		}
		if _, err := w.rearm(); err != nil {
			w.log.Warn("cannot watch for file changes", "err", err)
		}
	}
	return true
}

// handleError logs an fsnotify error and reports whether it may have hidden
// a change: after a queue overflow events were lost, so assume one.
func (w *Watcher) handleError(err error) bool {
	if !errors.Is(err, fsnotify.ErrEventOverflow) {
		w.log.Warn("file watcher error", "err", err)
		return false
	}
	w.log.Warn("file watcher overflowed; reloading in case a change was lost")
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := w.rearm(); err != nil {
		w.log.Warn("cannot watch for file changes", "err", err)
	}
	return true
}

// rearm moves the watches to where plan says they belong. It plans again
// after each move, because a directory can appear between the Stat that
// planned a watch and the Add that placed it; moved reports that this
// happened, so a change may have gone unseen. Callers hold mu.
func (w *Watcher) rearm() (moved bool, err error) {
	for i := range maxRearm {
		l := w.set.plan()
		w.linked = l.linked
		if maps.Equal(l.dirs, w.dirs) {
			return i > 1, nil
		}
		if err := w.apply(l.dirs); err != nil {
			return true, err
		}
	}
	return true, errors.New("watch: directories above the watched files keep changing")
}

// apply adds and removes directory watches so that exactly want are
// watched. A directory gone before it could be added is skipped: the next
// plan finds its nearest ancestor instead.
func (w *Watcher) apply(want map[string]bool) error {
	for dir := range w.dirs {
		if !want[dir] {
			// Fails only for a watch fsnotify has already dropped.
			_ = w.fsw.Remove(dir)
			delete(w.dirs, dir)
		}
	}
	var errs []error
	for dir := range want {
		if w.dirs[dir] {
			continue
		}
		switch err := w.fsw.Add(dir); {
		case err == nil:
			w.dirs[dir] = true
		case !errors.Is(err, fs.ErrNotExist):
			errs = append(errs, fmt.Errorf("watch %s: %w", dir, err))
		}
	}
	return errors.Join(errs...)
}
