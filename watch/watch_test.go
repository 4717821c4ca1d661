package watch

import (
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	// testDebounce is what egressgate passes: the benchmark's 100 ms
	// budget leaves room for little more.
	testDebounce = 20 * time.Millisecond
	// eventually bounds the wait for a report that must come; only a
	// missing report should ever take this long.
	eventually = 5 * time.Second
	// quietFor is how long a test waits to conclude that no report comes:
	// well past the debounce, including its cap.
	quietFor = maxBurstFactor*testDebounce + 100*time.Millisecond
)

// start returns a watcher on files, closed when the test ends.
func start(t *testing.T, files ...string) *Watcher {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	w, err := New(log, testDebounce)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, w.Close()) })
	require.NoError(t, w.Set(files))
	return w
}

// watched is the set of directories w watches now.
func (w *Watcher) watched() map[string]bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.dirs)
}

func requireChange(t *testing.T, w *Watcher, why string) {
	t.Helper()
	select {
	case _, ok := <-w.Changes():
		require.True(t, ok, "Changes closed while waiting for: %s", why)
	case <-time.After(eventually):
		t.Fatalf("no change reported within %s: %s", eventually, why)
	}
}

func requireQuiet(t *testing.T, w *Watcher, why string) {
	t.Helper()
	select {
	case <-w.Changes():
		t.Fatalf("change reported: %s", why)
	case <-time.After(quietFor):
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
}

// replace writes path the way editors and Codex do: a temporary file in
// the same directory, renamed over it.
func replace(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	write(t, tmp, content)
	require.NoError(t, os.Rename(tmp, path))
}

// TestEveryOperationIsAChange checks each way a watched file can change,
// including ending: a removed token file must empty its slot.
func TestEveryOperationIsAChange(t *testing.T) {
	tests := []struct {
		name string
		op   func(t *testing.T, path string)
	}{
		{"write", func(t *testing.T, p string) { write(t, p, "new") }},
		{"truncate", func(t *testing.T, p string) { require.NoError(t, os.Truncate(p, 0)) }},
		{"chmod", func(t *testing.T, p string) { require.NoError(t, os.Chmod(p, 0o400)) }},
		{"atomic replace", func(t *testing.T, p string) { replace(t, p, "new") }},
		{"remove", func(t *testing.T, p string) { require.NoError(t, os.Remove(p)) }},
		{"renamed away", func(t *testing.T, p string) { require.NoError(t, os.Rename(p, p+".old")) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token")
			write(t, path, "old")
			w := start(t, path)
			tt.op(t, path)
			requireChange(t, w, tt.name)
			requireQuiet(t, w, "one operation is one report")
		})
	}
}

// TestReplacedRepeatedly is the failure of inode watches: after the first
// rename the old inode is gone, so the second replace must still be seen.
func TestReplacedRepeatedly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.json")
	write(t, path, "v0")
	w := start(t, path)
	for i := range 3 {
		replace(t, path, "v"+string(rune('1'+i)))
		requireChange(t, w, "replace number "+string(rune('1'+i)))
	}
}

func TestRemoveAndRecreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	write(t, path, "old")
	w := start(t, path)
	require.NoError(t, os.Remove(path))
	requireChange(t, w, "removed")
	write(t, path, "new")
	requireChange(t, w, "created again")
}

func TestUnrelatedFilesAreIgnored(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	write(t, path, "old")
	w := start(t, path)

	other := filepath.Join(dir, "token.bak") // shares a prefix with the file
	write(t, other, "x")
	require.NoError(t, os.Chmod(other, 0o400))
	require.NoError(t, os.Rename(other, filepath.Join(dir, "other")))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sub"), 0o700))
	write(t, filepath.Join(dir, "sub", "token"), "x")
	requireQuiet(t, w, "only other files changed")

	write(t, path, "new")
	requireChange(t, w, "the watched file, after the others")
}

// TestBurstIsCoalesced: 50 writes and renames make one report. The
// watcher's clock stands still during the burst, so no delay in delivering
// or handling the events, however long on a loaded machine, can end the
// debounce early. A sentinel file renamed into place after the burst says
// when the watcher has handled every event of it (inotify reports one
// directory's events in order) and restarted its timer for the last time;
// only then does the clock move. The cap on
// a burst's length is delay's, tested on its own.
func TestBurstIsCoalesced(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	sentinel := filepath.Join(dir, "sentinel")
	write(t, path, "v")
	clk := newFakeClock()
	// The watcher logs an event before it resets the timer for it: the
	// count at the sentinel's log line says which Reset is the last.
	resetsBefore := make(chan int, 1)
	log := logCalling(t, sentinel, func() {
		select {
		case resetsBefore <- clk.resetCount():
		default: // only the first event on the sentinel counts
		}
	})
	w, err := newWatcher(log, testDebounce, clk)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, w.Close()) })
	require.NoError(t, w.Set([]string{path, sentinel}))

	for i := range 50 {
		if i%2 == 0 {
			write(t, path, "burst")
		} else {
			replace(t, path, "burst")
		}
	}
	// A rename is one event on the watched name, so none of the
	// sentinel's own events can come after the one waited for.
	replace(t, sentinel, "end")
	select {
	case n := <-resetsBefore:
		clk.waitResets(t, n)
	case <-time.After(eventually):
		t.Fatal("the watcher never handled the sentinel's event")
	}
	select {
	case <-w.Changes():
		t.Fatal("reported before the debounce elapsed")
	default:
	}

	clk.Advance(testDebounce)
	requireChange(t, w, "the burst, once quiet for the debounce")
	// Every event was handled before the clock moved: nothing is left
	// to report, however long the clock runs on.
	clk.Advance(maxBurstFactor * testDebounce)
	select {
	case <-w.Changes():
		t.Fatal("a second report for one burst")
	default:
	}
	require.Equal(t, 1, clk.fired(), "the quiet timer ended one burst")
}

func TestSetReplacesTheSet(t *testing.T) {
	a := filepath.Join(t.TempDir(), "a")
	b := filepath.Join(t.TempDir(), "b")
	write(t, a, "a")
	write(t, b, "b")
	w := start(t, a)
	require.NoError(t, w.Set([]string{b}))
	require.Equal(t, map[string]bool{filepath.Dir(b): true}, w.watched(), "a's directory is no longer watched")

	write(t, a, "a2")
	requireQuiet(t, w, "a is no longer watched")
	write(t, b, "b2")
	requireChange(t, w, "b is watched")

	require.NoError(t, w.Set(nil))
	require.Empty(t, w.watched())
	write(t, b, "b3")
	requireQuiet(t, w, "nothing is watched")
}

func TestSetRejectsRelativePaths(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	w := start(t, path)
	require.EqualError(t, w.Set([]string{path, "secrets/token"}), `watch: "secrets/token" is not an absolute path`)
	write(t, path, "new")
	requireChange(t, w, "the previous set stays")
}

// TestDirectoryCreatedLater is a token_file whose directory does not exist
// when egressgate starts.
func TestDirectoryCreatedLater(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "secrets", "token")
	w := start(t, path)
	require.Equal(t, map[string]bool{root: true}, w.watched(), "the nearest existing ancestor is watched")

	require.NoError(t, os.Mkdir(filepath.Join(root, "secrets"), 0o700))
	requireChange(t, w, "the file's directory appeared")
	write(t, path, "token")
	requireChange(t, w, "the file appeared in the new directory")
	require.Equal(t, map[string]bool{filepath.Dir(path): true}, w.watched(), "the ancestor is no longer watched")
}

func TestDirectoriesCreatedSeveralLevelsDown(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "a", "b", "c", "token")
	w := start(t, path)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	requireChange(t, w, "directories appeared")
	write(t, path, "token")
	requireChange(t, w, "the file appeared")
}

// TestDirectoryReplaced swaps the file's whole directory, then removes
// it: each new directory must be watched in turn.
func TestDirectoryReplaced(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "secrets")
	path := filepath.Join(dir, "token")
	require.NoError(t, os.Mkdir(dir, 0o700))
	write(t, path, "old")
	w := start(t, path)

	next := filepath.Join(root, "secrets.next")
	require.NoError(t, os.Mkdir(next, 0o700))
	write(t, filepath.Join(next, "token"), "new")
	require.NoError(t, os.Rename(dir, filepath.Join(root, "secrets.old")))
	require.NoError(t, os.Rename(next, dir))
	requireChange(t, w, "directory swapped")
	write(t, path, "newer")
	requireChange(t, w, "written in the swapped-in directory")

	require.NoError(t, os.RemoveAll(dir))
	requireChange(t, w, "directory removed")
	require.NoError(t, os.Mkdir(dir, 0o700))
	requireChange(t, w, "directory made again")
	write(t, path, "newest")
	requireChange(t, w, "written in the new directory")
}

// TestSymlinkSwap is a Kubernetes secret volume: the file is a symlink
// through "..data", and an update renames a new "..data" into place, so
// no event ever names the file.
func TestSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	version := func(name, content string) {
		require.NoError(t, os.Mkdir(filepath.Join(dir, name), 0o700))
		write(t, filepath.Join(dir, name, "token"), content)
	}
	version("..v1", "old")
	require.NoError(t, os.Symlink("..v1", filepath.Join(dir, "..data")))
	path := filepath.Join(dir, "token")
	require.NoError(t, os.Symlink(filepath.Join("..data", "token"), path))
	w := start(t, path)

	version("..v2", "new")
	require.NoError(t, os.Symlink("..v2", filepath.Join(dir, "..data_tmp")))
	require.NoError(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	requireChange(t, w, "..data swapped")
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "new", string(got))
}

// TestDirectoryMembership is control's manifest directory: a manifest
// added, removed or renamed in it is a change, though no watched file
// names it; a write to a file nobody watches is not.
func TestDirectoryMembership(t *testing.T) {
	dir := t.TempDir()
	w, err := New(nil, testDebounce)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, w.Close()) })
	require.NoError(t, w.Set(nil, dir))

	added := filepath.Join(dir, "b.yaml")
	write(t, added, "new")
	requireChange(t, w, "a manifest added")
	require.NoError(t, os.Rename(added, filepath.Join(dir, "c.yaml")))
	requireChange(t, w, "a manifest renamed")
	require.NoError(t, os.Remove(filepath.Join(dir, "c.yaml")))
	requireChange(t, w, "a manifest removed")

	other := filepath.Join(t.TempDir(), "x")
	write(t, other, "x")
	require.NoError(t, w.Set(nil, dir, other+"-dir"))
	write(t, other, "y")
	requireQuiet(t, w, "a file outside the watched directory")
}

func TestClose(t *testing.T) {
	before := runtime.NumGoroutine()
	path := filepath.Join(t.TempDir(), "token")
	w, err := New(nil, testDebounce)
	require.NoError(t, err)
	require.NoError(t, w.Set([]string{path}))
	write(t, path, "pending") // a burst in progress must not stop Close

	require.NoError(t, w.Close())
	select {
	case <-w.stopped:
	default:
		t.Fatal("Close returned before the watcher's goroutine")
	}
	for range w.Changes() { // drains at most one report, then ends
	}
	// fsnotify's reader may still be returning from its last read when
	// Close does; it must be gone soon after, not at once.
	// (A loop, not require.Eventually: that runs its condition on a
	// goroutine of its own, which would count.)
	deadline := time.Now().Add(eventually)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
	require.LessOrEqual(t, runtime.NumGoroutine(), before, "goroutines left behind")
	require.NoError(t, w.Close(), "a second Close")
	require.ErrorIs(t, w.Set([]string{path}), ErrClosed)
}

// BenchmarkReplaceToReport measures what the watcher adds between a file
// replaced and its report: the debounce, plus the kernel's delivery.
func BenchmarkReplaceToReport(b *testing.B) {
	path := filepath.Join(b.TempDir(), "auth.json")
	w, err := New(nil, testDebounce)
	require.NoError(b, err)
	defer func() { require.NoError(b, w.Close()) }()
	require.NoError(b, w.Set([]string{path}))
	tmp := path + ".tmp"
	for b.Loop() {
		require.NoError(b, os.WriteFile(tmp, []byte("token"), 0o600))
		require.NoError(b, os.Rename(tmp, path))
		select {
		case <-w.Changes():
		case <-time.After(eventually):
			b.Fatal("no report")
		}
	}
}
