//go:build unix

package securefile

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLockDirExcludes(t *testing.T) {
	dir := t.TempDir()
	unlock, err := LockDir(dir)
	require.NoError(t, err)
	requireMode(t, filepath.Join(dir, ".lock"), 0o600)

	acquired := make(chan func())
	go func() {
		second, err := LockDir(dir)
		if err != nil {
			close(acquired)
			return
		}
		acquired <- second
	}()
	select {
	case <-acquired:
		t.Fatal("a second LockDir got the lock while the first held it")
	case <-time.After(100 * time.Millisecond):
	}
	unlock()
	select {
	case second, ok := <-acquired:
		require.True(t, ok, "second LockDir failed")
		second()
	case <-time.After(10 * time.Second):
		t.Fatal("the second LockDir never got the released lock")
	}
}
