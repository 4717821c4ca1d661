//go:build !unix

package securefile

import (
	"errors"
	"os"
)

// LockDir does nothing where flock(2) is missing. What is left is
// CreateExclusive's guarantee: concurrent creators never overwrite each
// other's files, so a loser loads the winner's files or reports them
// half-created, but never runs with files that are not on disk.
func LockDir(string) (unlock func(), err error) { return func() {}, nil }

// LockFile locks nothing where flock(2) is not available.
func LockFile(string) (unlock func(), err error) { return func() {}, nil }

// syncDir does nothing: only Unix can sync a directory.
func syncDir(string) error { return nil }

// keepOwner does nothing where files have no Unix owner.
func keepOwner(*os.File, os.FileInfo) error { return nil }

// ErrInUse is a lock another process holds.
var ErrInUse = errors.New("in use by another process")

// ClaimDir claims nothing where flock(2) is not available.
func ClaimDir(string) (release func(), err error) { return func() {}, nil }
