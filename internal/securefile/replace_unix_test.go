//go:build unix

package securefile

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReplaceKeepingOwner: the file is replaced with the new content and
// mode, a symbolic link to it stays a link, and (where the test may give
// files away, as root) the owner stays the file's owner.
func TestReplaceKeepingOwner(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "real-auth.json")
	link := filepath.Join(dir, "auth.json")
	require.NoError(t, os.WriteFile(target, []byte("old"), 0o644))
	require.NoError(t, os.Symlink(target, link))
	root := os.Geteuid() == 0
	const nobody = 65534
	if root {
		require.NoError(t, os.Chown(target, nobody, nobody))
	}

	require.NoError(t, ReplaceKeepingOwner(link, []byte("new"), 0o600))

	fi, err := os.Lstat(link)
	require.NoError(t, err)
	assert.Equal(t, os.ModeSymlink, fi.Mode().Type(), "the link is kept")
	data, err := os.ReadFile(target)
	require.NoError(t, err)
	assert.Equal(t, "new", string(data))
	fi, err = os.Stat(target)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	if root {
		st := fi.Sys().(*syscall.Stat_t)
		assert.Equal(t, uint32(nobody), st.Uid, "still the owner's file")
		assert.Equal(t, uint32(nobody), st.Gid)
	}
	left, err := filepath.Glob(filepath.Join(dir, ".*tmp*"))
	require.NoError(t, err)
	assert.Empty(t, left, "no temporary file left behind")
}
