package serve

import (
	"os"
	"slices"

	"github.com/egressgate/egressgate/config"
)

// fileStamp is what a reload compares to tell whether a file changed
// since a bottle was compiled from it: size, modification and change
// times, inode (a file replaced by rename is a new inode). The zero stamp
// matches no file, missing ones included.
type fileStamp struct {
	exists bool
	size   int64
	mod    int64 // ns
	sys    sysStamp
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{exists: false, size: -1}
	}
	return fileStamp{exists: true, size: fi.Size(), mod: fi.ModTime().UnixNano(), sys: sysStampOf(fi)}
}

func stampFiles(files []string) map[string]fileStamp {
	out := make(map[string]fileStamp, len(files))
	for _, f := range files {
		out[f] = stampOf(f)
	}
	return out
}

// inputFiles are the files b's next compile reads, as far as known: its
// manifest and what its served generation was compiled from.
func (b *bottle) inputFiles() []string {
	files := config.ManifestInputs(b.manifest)
	if b.current != nil {
		files = append(files, b.current.policy.Inputs...)
	}
	slices.Sort(files)
	return slices.Compact(files)
}

// unchanged reports whether every file b was compiled from still matches
// its stamp. A bottle that failed, or never loaded, always compiles again.
func (p *plane) unchanged(b *bottle) bool {
	p.mu.Lock()
	stamps := b.inputs
	p.mu.Unlock()
	if stamps == nil {
		return false
	}
	for f, s := range stamps {
		if stampOf(f) != s {
			return false
		}
	}
	return true
}
