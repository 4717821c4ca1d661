package watch

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/fsnotify/fsnotify"
)

// structural are the operations that can change which directories hold
// the watched files, or what a watched name points at.
const structural = fsnotify.Create | fsnotify.Remove | fsnotify.Rename

// fileSet is the files a Watcher reports on, indexed for matching events.
type fileSet struct {
	files map[string]bool
	// above holds every directory above a watched file, up to the root. A
	// Create, Remove or Rename of one of them can bring a file into being
	// or take it away, even though no event names the file itself.
	above map[string]bool
	// dirs are directories whose membership is watched: a file created,
	// removed or renamed in one counts (control's manifest directory).
	dirs map[string]bool
}

func newFileSet(files, dirs []string) (fileSet, error) {
	s := fileSet{files: map[string]bool{}, above: map[string]bool{}, dirs: map[string]bool{}}
	for _, d := range dirs {
		if !filepath.IsAbs(d) {
			return fileSet{}, fmt.Errorf("watch: %q is not an absolute path", d)
		}
		d = filepath.Clean(d)
		s.dirs[d] = true
		// The directory itself appearing or vanishing counts too.
		for dir := filepath.Dir(d); !s.above[dir]; dir = filepath.Dir(dir) {
			s.above[dir] = true
		}
	}
	for _, f := range files {
		if !filepath.IsAbs(f) {
			return fileSet{}, fmt.Errorf("watch: %q is not an absolute path", f)
		}
		f = filepath.Clean(f)
		s.files[f] = true
		for dir := filepath.Dir(f); !s.above[dir]; dir = filepath.Dir(dir) {
			s.above[dir] = true
		}
	}
	return s, nil
}

// layout is where the watches go for a fileSet, as the filesystem stands.
type layout struct {
	// dirs are the directories to watch: each file's own directory, or
	// its nearest existing ancestor while that directory is missing.
	dirs map[string]bool
	// linked are the directories holding a watched file that is a
	// symlink. Kubernetes-style secret volumes swap a "..data" symlink
	// beside the file, so no event ever names the file: any Create,
	// Remove or Rename in such a directory counts.
	linked map[string]bool
}

// plan looks at the filesystem and says where the watches for s go.
func (s fileSet) plan() layout {
	l := layout{dirs: map[string]bool{}, linked: map[string]bool{}}
	for d := range s.dirs {
		l.dirs[nearestDir(d)] = true
	}
	for f := range s.files {
		l.dirs[nearestDir(filepath.Dir(f))] = true
		if fi, err := os.Lstat(f); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			l.linked[filepath.Dir(f)] = true
		}
	}
	return l
}

// nearestDir returns dir if it is a directory, else its nearest ancestor
// that is. Watching that ancestor sees the missing directory appear (a
// secrets/ directory made after egressgate starts), whereupon the watches
// are re-armed one level further down.
func nearestDir(dir string) string {
	for {
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return dir // the root: nothing further up to watch
		}
		dir = parent
	}
}

// classify says whether an event on name changes a watched file, and
// whether it may have moved the directories the watches hang on, so that
// they must be re-armed. Every operation on a watched file counts: a
// removed file is a change too (its slot must empty).
func (s fileSet) classify(name string, op fsnotify.Op, linked map[string]bool) (changed, rearm bool) {
	moved := op&structural != 0
	switch {
	case s.files[name]:
		// A Create may make the file a symlink, so re-plan on those too.
		return true, moved
	case !moved:
		// Writes and attribute changes elsewhere are someone else's files
		// (or, on kqueue, a directory noting that its entries changed).
		return false, false
	case s.above[name] || s.dirs[name]:
		return true, true
	case linked[filepath.Dir(name)] || s.dirs[filepath.Dir(name)]:
		return true, false
	}
	return false, false
}
