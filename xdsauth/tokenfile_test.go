package xdsauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
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

// authorityAt is an authority with a key of its own (in memory only) and
// stateDir for its tokens, so that two can share a state dir.
func authorityAt(t *testing.T, stateDir string) *Authority {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return &Authority{key: key, stateDir: stateDir}
}

func TestEnsureTokenCreatesThenReuses(t *testing.T) {
	stateDir := t.TempDir()
	a := authorityAt(t, stateDir)

	token, path, err := a.EnsureToken("demo", RoleExtProc, testNow)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(stateDir, "tokens", "demo.jwt"), path, "the sidecar's --token-file")
	requireMode(t, filepath.Dir(path), 0o700)
	requireMode(t, path, 0o600)
	require.Equal(t, token, readToken(t, path), "the file holds exactly the token, no newline")
	id, err := a.Verify(token, testNow.Add(364*day))
	require.NoError(t, err, "valid for a year")
	require.Equal(t, Identity{Node: "demo", Role: RoleExtProc}, id)

	// 300 days on, 65 days are left: a restart must hand out the same token
	// the running Envoy already holds.
	again, _, err := a.EnsureToken("demo", RoleExtProc, testNow.Add(300*day))
	require.NoError(t, err)
	require.Equal(t, token, again)

	envoyToken, envoyPath, err := a.EnsureToken("demo", RoleEnvoy, testNow)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(stateDir, "tokens", "demo.envoy.jwt"), envoyPath)
	require.NotEqual(t, token, envoyToken, "each role its own token")
}

// TestRotateAndRemoveRevoke: a token is accepted only while it is the one
// on file, so rotating replaces both of a bottle's tokens (and only its
// own) and removing them leaves nothing to accept.
func TestRotateAndRemoveRevoke(t *testing.T) {
	a := authorityAt(t, t.TempDir())
	old := map[Role]string{}
	for _, role := range []Role{RoleEnvoy, RoleExtProc} {
		old[role] = ensure(t, a, "demo", role, testNow)
	}
	other := ensure(t, a, "other", RoleExtProc, testNow)
	for role, token := range old {
		require.True(t, a.registered(Identity{Node: "demo", Role: role}, token))
	}
	require.False(t, a.registered(Identity{Node: "demo", Role: RoleEnvoy}, old[RoleExtProc]), "one role's token is not the other's")

	require.NoError(t, a.Rotate("demo", testNow))
	for role, token := range old {
		require.False(t, a.registered(Identity{Node: "demo", Role: role}, token), "old %s token", role)
		fresh := ensure(t, a, "demo", role, testNow)
		require.NotEqual(t, token, fresh)
		require.True(t, a.registered(Identity{Node: "demo", Role: role}, fresh))
	}
	require.True(t, a.registered(Identity{Node: "other", Role: RoleExtProc}, other), "another bottle's token is untouched")

	require.NoError(t, a.RemoveTokens("demo"))
	for _, role := range []Role{RoleEnvoy, RoleExtProc} {
		_, err := os.Stat(TokenPath(a.stateDir, "demo", role))
		require.ErrorIs(t, err, os.ErrNotExist)
	}
	require.Error(t, a.Rotate("../x", testNow))
	require.Error(t, a.RemoveTokens("../x"))
}

func TestEnsureTokenRemints(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, a *Authority, path string)
		at      time.Time
	}{
		{
			name:    "thirty days or less left",
			prepare: func(t *testing.T, a *Authority, _ string) { ensure(t, a, "demo", RoleExtProc, testNow) },
			at:      testNow.Add(335 * day),
		},
		{
			name:    "expired",
			prepare: func(t *testing.T, a *Authority, _ string) { ensure(t, a, "demo", RoleExtProc, testNow) },
			at:      testNow.Add(400 * day),
		},
		{
			name: "signed by a previous key",
			prepare: func(t *testing.T, a *Authority, _ string) {
				ensure(t, authorityAt(t, a.stateDir), "demo", RoleExtProc, testNow)
			},
			at: testNow,
		},
		{
			name: "minted for another node",
			prepare: func(t *testing.T, a *Authority, path string) {
				other := ensure(t, a, "other", RoleExtProc, testNow)
				require.NoError(t, os.WriteFile(path, []byte(other), 0o600))
			},
			at: testNow,
		},
		{
			name: "minted for the other role",
			prepare: func(t *testing.T, a *Authority, path string) {
				envoy := ensure(t, a, "demo", RoleEnvoy, testNow)
				require.NoError(t, os.WriteFile(path, []byte(envoy), 0o600))
			},
			at: testNow,
		},
		{
			name: "from before roles",
			prepare: func(t *testing.T, a *Authority, path string) {
				require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
				require.NoError(t, os.WriteFile(path, []byte(roleless(t, a, "demo")), 0o600))
			},
			at: testNow,
		},
		{
			name: "not a token",
			prepare: func(t *testing.T, _ *Authority, path string) {
				require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
				require.NoError(t, os.WriteFile(path, []byte("garbage\n"), 0o600))
			},
			at: testNow,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := authorityAt(t, t.TempDir())
			path := TokenPath(a.stateDir, "demo", RoleExtProc)
			tt.prepare(t, a, path)
			before := readToken(t, path)

			token, _, err := a.EnsureToken("demo", RoleExtProc, tt.at)
			require.NoError(t, err)
			require.NotEqual(t, before, token)
			require.Equal(t, token, readToken(t, path))
			requireMode(t, path, 0o600)
			id, err := a.Verify(token, tt.at.Add(364*day))
			require.NoError(t, err, "the new token runs a full year from now")
			require.Equal(t, Identity{Node: "demo", Role: RoleExtProc}, id)
		})
	}
}

func ensure(t *testing.T, a *Authority, node string, role Role, now time.Time) string {
	t.Helper()
	token, _, err := a.EnsureToken(node, role, now)
	require.NoError(t, err)
	return token
}

func TestEnsureTokenRefusesAWidelyReadableFile(t *testing.T) {
	a := authorityAt(t, t.TempDir())
	token, path, err := a.EnsureToken("demo", RoleEnvoy, testNow)
	require.NoError(t, err)
	require.NoError(t, os.Chmod(path, 0o644))

	_, _, err = a.EnsureToken("demo", RoleEnvoy, testNow)
	require.ErrorContains(t, err, path)
	require.ErrorContains(t, err, "may have leaked")
	require.ErrorContains(t, err, "egressgate token rotate demo")
	require.NotContains(t, err.Error(), token)
}

func TestEnsureTokenRejectsPathlikeNodes(t *testing.T) {
	stateDir := t.TempDir()
	a := authorityAt(t, stateDir)
	for _, node := range []string{"", "../key", "a/b", "."} {
		_, _, err := a.EnsureToken(node, RoleEnvoy, testNow)
		require.ErrorContains(t, err, "node id", "node %q", node)
	}
	entries, err := os.ReadDir(stateDir)
	require.NoError(t, err)
	require.Empty(t, entries, "nothing written for a bad node id")
}
