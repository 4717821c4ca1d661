package pki

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func parseCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(data)
	require.NotNil(t, block)
	require.Equal(t, "CERTIFICATE", block.Type)
	cert, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	return cert
}

func TestLoadOrCreateCACreatesThenReuses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	ca, err := LoadOrCreateCA(dir, t0)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "ca.pem"), ca.CertPath())

	fi, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	fi, err = os.Stat(filepath.Join(dir, "ca-key.pem"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	onDisk, err := os.ReadFile(ca.CertPath())
	require.NoError(t, err)
	require.Equal(t, onDisk, ca.CertPEM())

	again, err := LoadOrCreateCA(dir, t0.Add(24*time.Hour))
	require.NoError(t, err)
	require.Equal(t, ca.CertPEM(), again.CertPEM(), "second run must reuse ca.pem")
}

// serve and control may start together on a fresh state dir; they must
// end up with one CA, and it must be the one on disk.
func TestLoadOrCreateCAConcurrentCreatorsAgree(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	const n = 8
	var (
		wg   sync.WaitGroup
		cas  [n]*CA
		errs [n]error
	)
	for i := range n {
		wg.Go(func() { cas[i], errs[i] = LoadOrCreateCA(dir, t0) })
	}
	wg.Wait()

	certPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	require.NoError(t, err)
	onDisk, err := readKey(filepath.Join(dir, "ca-key.pem"))
	require.NoError(t, err)
	for i := range n {
		require.NoError(t, errs[i], "creator %d", i)
		require.Equal(t, certPEM, cas[i].CertPEM(), "creator %d holds another certificate", i)
		require.True(t, onDisk.Equal(cas[i].key), "creator %d signs with a key that is not on disk", i)
	}
	leftovers, err := filepath.Glob(filepath.Join(dir, ".*tmp*"))
	require.NoError(t, err)
	require.Empty(t, leftovers, "temporary files are cleaned up")
}

func TestCACertificateShape(t *testing.T) {
	ca, err := LoadOrCreateCA(t.TempDir(), t0)
	require.NoError(t, err)
	cert := parseCert(t, ca.CertPEM())
	require.Equal(t, "egressgate bottle CA", cert.Subject.CommonName)
	require.True(t, cert.IsCA)
	require.True(t, cert.MaxPathLenZero)
	require.Zero(t, cert.MaxPathLen)
	require.Equal(t, x509.KeyUsageCertSign|x509.KeyUsageCRLSign, cert.KeyUsage)
	require.Equal(t, x509.ECDSA, cert.PublicKeyAlgorithm)
	require.WithinDuration(t, t0.AddDate(10, 0, 0), cert.NotAfter, 72*time.Hour)
	require.NoError(t, cert.CheckSignatureFrom(cert))
}

func TestLoadOrCreateCARejectsBadFiles(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(t *testing.T, dir string)
		wantErr string
	}{
		{
			name: "key mode wider than 0600",
			corrupt: func(t *testing.T, dir string) {
				require.NoError(t, os.Chmod(filepath.Join(dir, "ca-key.pem"), 0o644))
			},
			wantErr: "ca-key.pem: mode 0644",
		},
		{
			name: "key from another CA",
			corrupt: func(t *testing.T, dir string) {
				other := t.TempDir()
				_, err := LoadOrCreateCA(other, t0)
				require.NoError(t, err)
				require.NoError(t, os.Rename(filepath.Join(other, "ca-key.pem"), filepath.Join(dir, "ca-key.pem")))
			},
			wantErr: "ca-key.pem: key does not match",
		},
		{
			name: "certificate missing",
			corrupt: func(t *testing.T, dir string) {
				require.NoError(t, os.Remove(filepath.Join(dir, "ca.pem")))
			},
			wantErr: "ca.pem: missing",
		},
		{
			name: "certificate not PEM",
			corrupt: func(t *testing.T, dir string) {
				require.NoError(t, os.WriteFile(filepath.Join(dir, "ca.pem"), []byte("junk"), 0o644))
			},
			wantErr: "ca.pem: no PEM CERTIFICATE",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := LoadOrCreateCA(dir, t0)
			require.NoError(t, err)
			tt.corrupt(t, dir)
			_, err = LoadOrCreateCA(dir, t0)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestLoadOrCreateCARejectsExpiredCA(t *testing.T) {
	dir := t.TempDir()
	_, err := LoadOrCreateCA(dir, t0)
	require.NoError(t, err)
	_, err = LoadOrCreateCA(dir, t0.AddDate(11, 0, 0))
	require.ErrorContains(t, err, "CA expired")
}
