package securefile

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func requireMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, want, fi.Mode().Perm(), path)
}

func requireNoTemps(t *testing.T, dir string) {
	t.Helper()
	leftovers, err := filepath.Glob(filepath.Join(dir, ".*tmp*"))
	require.NoError(t, err)
	require.Empty(t, leftovers, "temporary files are cleaned up")
}

func TestReadPrivate(t *testing.T) {
	tests := []struct {
		mode    fs.FileMode
		wantErr bool
	}{
		{0o600, false},
		{0o400, false},
		{0o640, true},
		{0o604, true},
		{0o644, true},
		{0o700, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%#o", tt.mode), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "secret")
			require.NoError(t, os.WriteFile(path, []byte("s3cret"), 0o600))
			require.NoError(t, os.Chmod(path, tt.mode))

			data, err := ReadPrivate(path)
			if !tt.wantErr {
				require.NoError(t, err)
				require.Equal(t, "s3cret", string(data))
				return
			}
			require.Nil(t, data)
			require.EqualError(t, err, fmt.Sprintf("%s: mode %#o is wider than 0600; run chmod 600 %s", path, tt.mode, path))
			var me *ModeError
			require.ErrorAs(t, err, &me)
			require.Equal(t, tt.mode, me.Perm)
			require.NotContains(t, err.Error(), "s3cret")
		})
	}
}

func TestModeErrorWithLeakAdvice(t *testing.T) {
	err := &ModeError{Path: "/s/key", Perm: 0o644, Leak: "the key may have leaked: remove it"}
	require.EqualError(t, err, "/s/key: mode 0644 is wider than 0600; the key may have leaked: remove it, or run chmod 600 /s/key")
}

func TestReadPrivateMissing(t *testing.T) {
	_, err := ReadPrivate(filepath.Join(t.TempDir(), "absent"))
	require.ErrorIs(t, err, fs.ErrNotExist)
}

func TestWriteAtomic(t *testing.T) {
	tests := []struct {
		name string
		old  fs.FileMode // 0: no old file
	}{
		{"creates", 0},
		{"replaces a wider file and narrows it", 0o644},
		{"replaces a narrower file", 0o400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "envoy.yaml")
			if tt.old != 0 {
				require.NoError(t, os.WriteFile(path, []byte("old content, longer than the new"), 0o600))
				require.NoError(t, os.Chmod(path, tt.old))
			}
			require.NoError(t, WriteAtomic(path, []byte("new"), 0o600))
			requireMode(t, path, 0o600)
			got, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, "new", string(got))
			requireNoTemps(t, dir)
		})
	}
}

// The file gets exactly perm: a umask (commonly 022) would have turned
// 0666 into 0644.
func TestWriteAtomicIgnoresUmask(t *testing.T) {
	path := filepath.Join(t.TempDir(), "public")
	require.NoError(t, WriteAtomic(path, []byte("data"), 0o666))
	requireMode(t, path, 0o666)
}

func TestCreateExclusiveKeepsAnExistingFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(path, []byte("first"), 0o600))

	created, err := CreateExclusive(path, []byte("second"), 0o600)
	require.NoError(t, err)
	require.False(t, created)
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "first", string(got))
	requireNoTemps(t, dir)
}

func TestCreateExclusiveConcurrentCreatorsAgree(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key.pem")
	const n = 8
	var (
		wg      sync.WaitGroup
		created [n]bool
		errs    [n]error
		read    [n][]byte
	)
	for i := range n {
		wg.Go(func() {
			created[i], errs[i] = CreateExclusive(path, fmt.Appendf(nil, "creator %d", i), 0o600)
			if errs[i] == nil {
				read[i], errs[i] = ReadPrivate(path)
			}
		})
	}
	wg.Wait()

	winners := 0
	var want []byte
	for i := range n {
		require.NoError(t, errs[i], "creator %d", i)
		if created[i] {
			winners++
			want = fmt.Appendf(nil, "creator %d", i)
		}
	}
	require.Equal(t, 1, winners, "exactly one creator wins")
	for i := range n {
		require.Equal(t, string(want), string(read[i]), "creator %d read another file", i)
	}
	requireMode(t, path, 0o600)
	requireNoTemps(t, dir)
}
