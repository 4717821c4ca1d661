package agentenv

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/egressgate/egressgate/internal/securefile"
)

// write puts the bundle's files under dir and returns what it wrote. Each
// file is replaced by a rename, so an agent container that has the
// directory mounted never reads a half-written auth.json or ca.pem.
//
// Stale files are reported rather than removed: a codex/auth.json left in
// a directory some container may still mount could be that agent's own
// login, and deleting it is not agent-env's call.
func (b *bundle) write(dir string) (*Result, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("output directory: %w", err)
	}
	res := &Result{}
	for _, f := range b.files {
		p := filepath.Join(dir, filepath.FromSlash(f.name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, fmt.Errorf("output directory: %w", err)
		}
		if err := securefile.WriteAtomic(p, f.data, f.mode); err != nil {
			return nil, fmt.Errorf("write %s: %w", p, err)
		}
		res.Files = append(res.Files, p)
	}
	res.Notes = append(res.Notes, b.notes...)
	for _, name := range b.stale {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if _, err := os.Lstat(p); err == nil {
			res.Notes = append(res.Notes, fmt.Sprintf("%s is left from an earlier run and no longer used; remove it if no agent needs it", p))
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return res, nil
}
