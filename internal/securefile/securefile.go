// Package securefile reads and writes the files in egressgate's state dir
// that hold secrets or must survive restarts unchanged: private files only
// their owner may read, files replaced or created so that no reader ever
// sees a half-written one, and a lock that serialises the processes
// (`egressgate serve`, `egressgate control`) sharing one state dir.
package securefile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// ModeError reports a private file that group or others can access.
type ModeError struct {
	Path string
	Perm fs.FileMode
	// Leak, when set, tells the operator what to do about a copy that may
	// already have been taken (revoking it, say); the chmod fix follows it.
	Leak string
}

func (e *ModeError) Error() string {
	if e.Leak == "" {
		return fmt.Sprintf("%s: mode %#o is wider than 0600; run chmod 600 %s", e.Path, e.Perm, e.Path)
	}
	return fmt.Sprintf("%s: mode %#o is wider than 0600; %s, or run chmod 600 %s", e.Path, e.Perm, e.Leak, e.Path)
}

// ReadPrivate returns the contents of path, refusing with a *ModeError a
// file that group or others can access: such a file may already have been
// copied, and reading it as if nothing happened would hide that. The mode
// is checked on the opened file, so it is the mode of the bytes returned.
// A missing file is an error matching fs.ErrNotExist.
func ReadPrivate(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close() // read-only: a close error loses nothing
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if perm := fi.Mode().Perm(); perm&^0o600 != 0 {
		return nil, &ModeError{Path: path, Perm: perm}
	}
	return io.ReadAll(f)
}

// WriteAtomic replaces path with data, so that a reader sees the old
// content or the new, never a half-written file. The file gets perm (not
// masked by the umask) whatever mode an old file had, and before any byte
// is written, so a secret is never readable by others, not even briefly.
func WriteAtomic(path string, data []byte, perm fs.FileMode) error {
	return writeTempThen(path, data, perm, nil, os.Rename)
}

// WriteIfChanged is WriteAtomic, skipped when path already holds data with
// mode perm. A control plane restarting with a thousand bottles rewrites
// none of their unchanged files, and so waits on no fsync for them.
func WriteIfChanged(path string, data []byte, perm fs.FileMode) error {
	if fi, err := os.Lstat(path); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm() == perm && fi.Size() == int64(len(data)) {
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
			return nil
		}
	}
	return WriteAtomic(path, data, perm)
}

// ReplaceKeepingOwner replaces the existing file at path like WriteAtomic,
// keeping its owner and group: a file egressgate rewrites in someone
// else's home (the host's Codex login, when egressgate runs as another
// user) stays theirs, readable by their tools. A symbolic link at path is
// followed, so the file it names is replaced and the link kept.
func ReplaceKeepingOwner(path string, data []byte, perm fs.FileMode) error {
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	fi, err := os.Stat(target)
	if err != nil {
		return err
	}
	return writeTempThen(target, data, perm, func(f *os.File) error { return keepOwner(f, fi) }, os.Rename)
}

// CreateExclusive creates path holding data, like WriteAtomic, unless path
// already exists: then it leaves the file alone and reports created false.
// The file is hard-linked into place, and unlike a rename a link never
// replaces an existing file, so of several processes creating path at once
// exactly one wins and the others can read what it wrote.
func CreateExclusive(path string, data []byte, perm fs.FileMode) (created bool, err error) {
	err = writeTempThen(path, data, perm, nil, os.Link)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	return err == nil, err
}

// writeTempThen writes data to a synced temporary file beside path and
// moves it into place with place (os.Rename or os.Link), then syncs the
// directory so the new name survives a crash.
func writeTempThen(path string, data []byte, perm fs.FileMode, prepare func(*os.File) error, place func(tmp, path string) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a rename a no-op; after a link, drops the extra name
	if prepare != nil {
		if err := prepare(f); err != nil {
			f.Close()
			return err
		}
	}
	if err := writeSynced(f, data, perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := place(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

func writeSynced(f *os.File, data []byte, perm fs.FileMode) error {
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Sync()
}

// LockStateDir creates dir (0700) when missing and takes its lock: what
// every loader of state-dir keys does before it looks for them.
func LockStateDir(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return LockDir(dir)
}
