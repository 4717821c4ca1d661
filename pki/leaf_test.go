package pki

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newTestCA(t *testing.T) *CA {
	t.Helper()
	ca, err := LoadOrCreateCA(t.TempDir(), t0)
	require.NoError(t, err)
	return ca
}

func verifyLeaf(t *testing.T, ca *CA, l Leaf, host string, at time.Time) error {
	t.Helper()
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(ca.CertPEM()))
	_, err := parseCert(t, l.CertPEM).Verify(x509.VerifyOptions{
		DNSName:     host,
		Roots:       roots,
		CurrentTime: at,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return err
}

func TestLeafVerifiesForItsHostOnly(t *testing.T) {
	ca := newTestCA(t)
	l, err := ca.Leaf("API.GitHub.com", t0)
	require.NoError(t, err)

	require.NoError(t, verifyLeaf(t, ca, l, "api.github.com", t0))
	require.Error(t, verifyLeaf(t, ca, l, "github.com", t0))
	require.Error(t, verifyLeaf(t, ca, l, "evil.example", t0))

	cert := parseCert(t, l.CertPEM)
	require.Equal(t, []string{"api.github.com"}, cert.DNSNames)
	require.Equal(t, t0.Add(-time.Hour), cert.NotBefore)
	require.Equal(t, t0.Add(30*24*time.Hour), cert.NotAfter)
	require.Equal(t, cert.NotAfter, l.NotAfter)
	require.False(t, cert.IsCA)

	// The pair must load as a TLS certificate, as Envoy will load it.
	_, err = tls.X509KeyPair(l.CertPEM, l.KeyPEM)
	require.NoError(t, err)
}

func TestLeafForIPHost(t *testing.T) {
	ca := newTestCA(t)
	l, err := ca.Leaf("127.0.0.1", t0)
	require.NoError(t, err)
	cert := parseCert(t, l.CertPEM)
	require.Empty(t, cert.DNSNames)
	require.True(t, cert.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)))
	require.NoError(t, verifyLeaf(t, ca, l, "127.0.0.1", t0))
}

func TestLeafRejectsInvalidHosts(t *testing.T) {
	ca := newTestCA(t)
	for _, host := range []string{"", "a..b", "-a.com", "a b.com", "x/y", "a.com:443"} {
		_, err := ca.Leaf(host, t0)
		require.Error(t, err, "host %q", host)
	}
}

func TestLeafCacheAndRemint(t *testing.T) {
	ca := newTestCA(t)
	first, err := ca.Leaf("chatgpt.com", t0)
	require.NoError(t, err)

	// Just under 20 days in, more than 10 remain: still served from the
	// cache, until RenewAt.
	renewAt := ca.RenewAt(first)
	require.Equal(t, first.NotAfter.Add(-10*24*time.Hour), renewAt)
	cached, err := ca.Leaf("chatgpt.com", renewAt.Add(-time.Nanosecond))
	require.NoError(t, err)
	require.Equal(t, first.CertPEM, cached.CertPEM)

	// From RenewAt on, 10 days or fewer remain: a new leaf.
	later := renewAt
	fresh, err := ca.Leaf("chatgpt.com", later)
	require.NoError(t, err)
	require.NotEqual(t, first.CertPEM, fresh.CertPEM)
	require.Equal(t, later.Add(30*24*time.Hour), fresh.NotAfter)

	// Another host gets its own leaf.
	other, err := ca.Leaf("auth.openai.com", later)
	require.NoError(t, err)
	require.NotEqual(t, fresh.CertPEM, other.CertPEM)
}

func TestLeafNeverOutlivesCA(t *testing.T) {
	ca := newTestCA(t)
	caCert := parseCert(t, ca.CertPEM())
	near := caCert.NotAfter.Add(-5 * 24 * time.Hour)

	l, err := ca.Leaf("pypi.org", near)
	require.NoError(t, err)
	require.Equal(t, caCert.NotAfter, l.NotAfter)
	require.NoError(t, verifyLeaf(t, ca, l, "pypi.org", near))

	// Re-minting could not do better, so the clamped leaf is kept.
	again, err := ca.Leaf("pypi.org", near.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, l.CertPEM, again.CertPEM)
	assert.Equal(t, caCert.NotAfter, ca.RenewAt(l), "asked again only when the CA runs out")
	assert.Equal(t, caCert.NotAfter, ca.NotAfter())

	_, err = ca.Leaf("pypi.org", caCert.NotAfter)
	require.ErrorContains(t, err, "CA expired")
}

func TestLeafConcurrentCallsShareOneLeaf(t *testing.T) {
	ca := newTestCA(t)
	const n = 8
	got := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			l, err := ca.Leaf("example.com", t0)
			if err == nil {
				got[i] = l.CertPEM
			}
		})
	}
	wg.Wait()
	for i := range n {
		require.Equal(t, got[0], got[i])
	}
}

func TestLeafNeverPrintsKey(t *testing.T) {
	ca := newTestCA(t)
	l, err := ca.Leaf("example.com", t0)
	require.NoError(t, err)

	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("minted", "leaf", l)
	js, err := json.Marshal(l)
	require.NoError(t, err)

	outputs := []string{
		l.String(), fmt.Sprintf("%v", l), fmt.Sprintf("%+v", l), fmt.Sprintf("%#v", l),
		fmt.Sprintf("%s", l), fmt.Sprintf("%x", l), fmt.Sprintf("%d", l), fmt.Sprintf("%v", &l),
		logs.String(), string(js),
	}
	keyBody := string(l.KeyPEM[len("-----BEGIN PRIVATE KEY-----\n"):][:40])
	for _, out := range outputs {
		require.NotContains(t, out, "PRIVATE KEY")
		require.NotContains(t, out, keyBody)
		require.Contains(t, out, "redacted")
	}
}

// TestControlCAIsNotTheBottleCA: agents trust the bottle CA, so the CA
// that vouches for egressgate's own links must be another one, and a
// leaf from one must not verify under the other.
func TestControlCAIsNotTheBottleCA(t *testing.T) {
	state := t.TempDir()
	bottle, err := LoadOrCreateCA(state, t0)
	require.NoError(t, err)
	control, err := LoadOrCreateControlCA(state, t0)
	require.NoError(t, err)
	require.NotEqual(t, bottle.CertPEM(), control.CertPEM())
	assert.Equal(t, "egressgate control CA", parseCert(t, control.CertPEM()).Subject.CommonName)
	assert.FileExists(t, control.CertPath())

	again, err := LoadOrCreateControlCA(state, t0)
	require.NoError(t, err)
	require.Equal(t, control.CertPEM(), again.CertPEM(), "reused across restarts")

	l, err := control.LeafFor([]string{"control", "127.0.0.1", "localhost"}, t0)
	require.NoError(t, err)
	require.NoError(t, verifyLeaf(t, control, l, "control", t0))
	require.NoError(t, verifyLeaf(t, control, l, "localhost", t0))
	require.NoError(t, verifyLeaf(t, control, l, "127.0.0.1", t0))
	require.Error(t, verifyLeaf(t, control, l, "other", t0))
	require.Error(t, verifyLeaf(t, bottle, l, "control", t0), "the bottle CA does not vouch for control")

	cached, err := control.LeafFor([]string{"control", "127.0.0.1", "localhost"}, t0.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, l.CertPEM, cached.CertPEM)
	_, err = control.LeafFor(nil, t0)
	require.Error(t, err)
}
