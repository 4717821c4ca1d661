package xdsauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newAuthority(t *testing.T) *Authority {
	t.Helper()
	a, err := LoadOrCreateKey(t.TempDir())
	require.NoError(t, err)
	return a
}

func requireMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, want, fi.Mode().Perm(), path)
}

func TestLoadOrCreateKeyReusesTheKeyFile(t *testing.T) {
	stateDir := filepath.Join(t.TempDir(), "state")
	first, err := LoadOrCreateKey(stateDir)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(stateDir, "xds-signing-key.pem"), first.KeyPath())
	requireMode(t, stateDir, 0o700)
	requireMode(t, first.KeyPath(), 0o600)

	token, err := first.Mint("demo", RoleEnvoy, testNow, time.Hour)
	require.NoError(t, err)

	second, err := LoadOrCreateKey(stateDir)
	require.NoError(t, err)
	require.True(t, first.key.Equal(second.key), "the second load must reuse the key on disk")
	id, err := second.Verify(token, testNow)
	require.NoError(t, err, "a restarted control plane still accepts the tokens it minted")
	require.Equal(t, "demo", id.Node)
}

// Two processes sharing a state dir may start together; they must end up
// signing with the same key.
func TestLoadOrCreateKeyConcurrentCreatorsAgree(t *testing.T) {
	stateDir := t.TempDir()
	const n = 8
	keys := make([]*ecdsa.PrivateKey, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			a, err := LoadOrCreateKey(stateDir)
			if err == nil {
				keys[i] = a.key
			}
		})
	}
	wg.Wait()
	onDisk, err := readKey(filepath.Join(stateDir, keyFile))
	require.NoError(t, err)
	for i := range n {
		require.NotNil(t, keys[i], "creator %d failed", i)
		require.True(t, onDisk.Equal(keys[i]), "creator %d signs with a key that is not on disk", i)
	}
	leftovers, err := filepath.Glob(filepath.Join(stateDir, ".*tmp*"))
	require.NoError(t, err)
	require.Empty(t, leftovers, "temporary key files are cleaned up")
}

func pkcs8PEM(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func TestLoadOrCreateKeyRejectsBadKeyFiles(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)

	tests := []struct {
		name    string
		data    []byte
		mode    os.FileMode
		wantErr string
	}{
		{"readable by group", pkcs8PEM(t, p256), 0o640, "wider than 0600"},
		{"readable by all", pkcs8PEM(t, p256), 0o644, "wider than 0600"},
		{"not pem", []byte("not a key\n"), 0o600, "no PEM PRIVATE KEY"},
		{"corrupt pkcs8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}), 0o600, "xds-signing-key.pem"},
		{"p-384", pkcs8PEM(t, p384), 0o600, "not an ECDSA P-256 key"},
		{"rsa", pkcs8PEM(t, rsaKey), 0o600, "not an ECDSA P-256 key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, keyFile)
			require.NoError(t, os.WriteFile(path, tt.data, 0o600))
			require.NoError(t, os.Chmod(path, tt.mode))

			_, err := LoadOrCreateKey(dir)
			require.ErrorContains(t, err, path, "the error names the file")
			require.ErrorContains(t, err, tt.wantErr)
			after, readErr := os.ReadFile(path)
			require.NoError(t, readErr)
			require.Equal(t, tt.data, after, "a bad key file is reported, never replaced")
		})
	}
}
