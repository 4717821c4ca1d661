//go:build unix

package securefile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockFile is the lock's name inside the locked directory.
const lockFile = ".lock"

// LockDir takes an exclusive lock on dir, blocking until no other process
// (or goroutine) holds it, and returns the function that releases it.
// Hold it around load-or-create of files that belong together, so that
// when two processes start on a fresh dir the second loads what the first
// created instead of creating its own.
//
// The lock is a flock(2) on dir/.lock (created 0600 and never removed:
// removing it would let two processes lock two different files). flock
// locks belong to the open file, so separate calls in one process exclude
// each other too, and the kernel drops a lock whose holder dies.
func LockDir(dir string) (unlock func(), err error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	if err := flock(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// Closing the descriptor releases the lock; nothing was written, so a
	// close error has nothing to report.
	return func() { f.Close() }, nil
}

// LockFile takes an exclusive lock on the existing file at path, the same
// way LockDir does, without creating or writing anything. It serialises
// the processes that read, then replace, a file they share (the host's
// Codex auth.json). A writer that replaces the file by renaming leaves the
// lock on the old inode, so a holder must re-read the file by its path
// after locking.
func LockFile(path string) (unlock func(), err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if err := flock(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

func flock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// syncDir makes a rename or link in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close() // read-only: the Sync result is what counts
	return d.Sync()
}

// keepOwner gives f the owner and group of the file fi describes, when
// they differ from f's (only root may give a file away; anyone else
// writing someone else's file fails here rather than leave it theirs).
func keepOwner(f *os.File, fi os.FileInfo) error {
	want, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	have, err := f.Stat()
	if err != nil {
		return err
	}
	if got, ok := have.Sys().(*syscall.Stat_t); ok && got.Uid == want.Uid && got.Gid == want.Gid {
		return nil
	}
	return f.Chown(int(want.Uid), int(want.Gid))
}

// ErrInUse is a lock another process holds.
var ErrInUse = errors.New("in use by another process")

// ClaimDir takes a second, long-lived lock on dir, without waiting: the
// claim of one running process (serve or control) on a state dir, held
// until release. A second process claiming the same dir gets ErrInUse at
// once instead of rewriting the first one's files under it. It is a
// different file from LockDir's, so the claimant can still take LockDir
// for its short load-or-create steps.
func ClaimDir(dir string) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, claimFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("claim %s: %w", dir, err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", dir, ErrInUse)
		}
		return nil, fmt.Errorf("claim %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// claimFile is ClaimDir's lock inside the claimed directory.
const claimFile = ".running"
