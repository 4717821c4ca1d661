package watch

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/stretchr/testify/require"
)

func TestNewFileSet(t *testing.T) {
	s, err := newFileSet([]string{"/w/d/token", "/w/d/../d/auth.json", "/w/e/ca.pem"}, nil)
	require.NoError(t, err)
	require.Equal(t, map[string]bool{"/w/d/token": true, "/w/d/auth.json": true, "/w/e/ca.pem": true}, s.files)
	require.Equal(t, map[string]bool{"/w/d": true, "/w/e": true, "/w": true, "/": true}, s.above)

	_, err = newFileSet([]string{"/w/d/token", "./token"}, nil)
	require.EqualError(t, err, `watch: "./token" is not an absolute path`)
}

func TestClassify(t *testing.T) {
	s, err := newFileSet([]string{"/w/d/token"}, nil)
	require.NoError(t, err)
	linked := map[string]bool{"/w/k": true}
	tests := []struct {
		name           string
		path           string
		op             fsnotify.Op
		changed, rearm bool
	}{
		{"file written", "/w/d/token", fsnotify.Write, true, false},
		{"file chmod", "/w/d/token", fsnotify.Chmod, true, false},
		{"file created (may be a symlink now)", "/w/d/token", fsnotify.Create, true, true},
		{"file removed", "/w/d/token", fsnotify.Remove, true, true},
		{"file renamed away", "/w/d/token", fsnotify.Rename, true, true},
		{"sibling written", "/w/d/token.tmp", fsnotify.Write, false, false},
		{"sibling created", "/w/d/other", fsnotify.Create, false, false},
		{"file's directory removed", "/w/d", fsnotify.Remove, true, true},
		{"file's directory written (kqueue)", "/w/d", fsnotify.Write, false, false},
		{"ancestor renamed", "/w", fsnotify.Rename, true, true},
		{"ancestor created", "/w", fsnotify.Create, true, true},
		{"unrelated directory created", "/w/x", fsnotify.Create, false, false},
		{"symlink swapped beside a linked file", "/w/k/..data", fsnotify.Create, true, false},
		{"written beside a linked file", "/w/k/..data", fsnotify.Write, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changed, rearm := s.classify(tt.path, tt.op, linked)
			require.Equal(t, tt.changed, changed, "changed")
			require.Equal(t, tt.rearm, rearm, "rearm")
		})
	}
}

func TestPlan(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(root, "d"), 0o700))
	require.NoError(t, os.Mkdir(filepath.Join(root, "k"), 0o700))
	require.NoError(t, os.Symlink("elsewhere", filepath.Join(root, "k", "token")))
	// A file where a directory should be: it cannot hold the token.
	require.NoError(t, os.WriteFile(filepath.Join(root, "f"), nil, 0o600))
	s, err := newFileSet([]string{
		filepath.Join(root, "d", "token"),
		filepath.Join(root, "k", "token"),
		filepath.Join(root, "missing", "deeper", "token"),
		filepath.Join(root, "f", "token"),
	}, nil)
	require.NoError(t, err)
	l := s.plan()
	require.Equal(t, map[string]bool{
		filepath.Join(root, "d"): true,
		filepath.Join(root, "k"): true,
		root:                     true,
	}, l.dirs)
	require.Equal(t, map[string]bool{filepath.Join(root, "k"): true}, l.linked)
}

func TestDelay(t *testing.T) {
	const d = 20 * time.Millisecond
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name  string
		event time.Duration // after the burst began
		want  time.Duration
	}{
		{"first event", 0, d},
		{"event in the burst", 50 * time.Millisecond, d},
		{"near the cap", maxBurstFactor*d - 5*time.Millisecond, 5 * time.Millisecond},
		{"past the cap", maxBurstFactor*d + time.Second, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, delay(d, t0, t0.Add(tt.event)))
		})
	}
}
