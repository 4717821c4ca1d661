package xdsauth

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const day = 24 * time.Hour

func readToken(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(data)
}

func TestEnsureTokenCreatesThenReuses(t *testing.T) {
	a := newAuthority(t)
	stateDir := t.TempDir()

	token, path, err := a.EnsureToken(stateDir, "demo", testNow)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(stateDir, "tokens", "demo.jwt"), path)
	requireMode(t, filepath.Dir(path), 0o700)
	requireMode(t, path, 0o600)
	require.Equal(t, token, readToken(t, path), "the file holds exactly the token, no newline")
	node, err := a.Verify(token, testNow.Add(364*day))
	require.NoError(t, err, "valid for a year")
	require.Equal(t, "demo", node)

	// 300 days on, 65 days are left: a restart must hand out the same token
	// the running Envoy already holds.
	again, _, err := a.EnsureToken(stateDir, "demo", testNow.Add(300*day))
	require.NoError(t, err)
	require.Equal(t, token, again)
}

func TestEnsureTokenRemints(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, a *Authority, stateDir, path string)
		at      time.Time
	}{
		{
			name:    "thirty days or less left",
			prepare: func(t *testing.T, a *Authority, stateDir, _ string) { ensure(t, a, stateDir, "demo", testNow) },
			at:      testNow.Add(335 * day),
		},
		{
			name:    "expired",
			prepare: func(t *testing.T, a *Authority, stateDir, _ string) { ensure(t, a, stateDir, "demo", testNow) },
			at:      testNow.Add(400 * day),
		},
		{
			name: "signed by a previous key",
			prepare: func(t *testing.T, _ *Authority, stateDir, _ string) {
				ensure(t, newAuthority(t), stateDir, "demo", testNow)
			},
			at: testNow,
		},
		{
			name: "minted for another node",
			prepare: func(t *testing.T, a *Authority, stateDir, path string) {
				other := ensure(t, a, stateDir, "other", testNow)
				require.NoError(t, os.WriteFile(path, []byte(other), 0o600))
			},
			at: testNow,
		},
		{
			name: "not a token",
			prepare: func(t *testing.T, _ *Authority, stateDir, path string) {
				require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
				require.NoError(t, os.WriteFile(path, []byte("garbage\n"), 0o600))
			},
			at: testNow,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, stateDir := newAuthority(t), t.TempDir()
			path := filepath.Join(stateDir, "tokens", "demo.jwt")
			tt.prepare(t, a, stateDir, path)
			before := readToken(t, path)

			token, _, err := a.EnsureToken(stateDir, "demo", tt.at)
			require.NoError(t, err)
			require.NotEqual(t, before, token)
			require.Equal(t, token, readToken(t, path))
			requireMode(t, path, 0o600)
			node, err := a.Verify(token, tt.at.Add(364*day))
			require.NoError(t, err, "the new token runs a full year from now")
			require.Equal(t, "demo", node)
		})
	}
}

func ensure(t *testing.T, a *Authority, stateDir, node string, now time.Time) string {
	t.Helper()
	token, _, err := a.EnsureToken(stateDir, node, now)
	require.NoError(t, err)
	return token
}

func TestEnsureTokenRefusesAWidelyReadableFile(t *testing.T) {
	a, stateDir := newAuthority(t), t.TempDir()
	token, path, err := a.EnsureToken(stateDir, "demo", testNow)
	require.NoError(t, err)
	require.NoError(t, os.Chmod(path, 0o644))

	_, _, err = a.EnsureToken(stateDir, "demo", testNow)
	require.ErrorContains(t, err, path)
	require.ErrorContains(t, err, "may have leaked")
	require.NotContains(t, err.Error(), token)
}

func TestEnsureTokenRejectsPathlikeNodes(t *testing.T) {
	a, stateDir := newAuthority(t), t.TempDir()
	for _, node := range []string{"", "../key", "a/b", "."} {
		_, _, err := a.EnsureToken(stateDir, node, testNow)
		require.ErrorContains(t, err, "node id", "node %q", node)
	}
	entries, err := os.ReadDir(stateDir)
	require.NoError(t, err)
	require.Empty(t, entries, "nothing written for a bad node id")
}
