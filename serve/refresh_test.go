package serve

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/internal/standin"
	"github.com/egressgate/egressgate/pki"
)

// tokenEndpoint is a loopback auth.openai.com token endpoint with a
// certificate from its own CA, written to caFile for the manifest.
type tokenEndpoint struct {
	addr   string
	caFile string
	hits   *atomic.Int32
}

func newTokenEndpoint(t *testing.T, oauth *standin.OAuth) tokenEndpoint {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.LoadOrCreateCA(dir, time.Now())
	require.NoError(t, err)
	leaf, err := ca.Leaf("auth.openai.com", time.Now())
	require.NoError(t, err)
	cert, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
	require.NoError(t, err)
	hits := &atomic.Int32{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		oauth.ServeHTTP(w, r)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return tokenEndpoint{addr: srv.Listener.Addr().String(), caFile: ca.CertPath(), hits: hits}
}

func refreshingManifest(refresh bool, ep tokenEndpoint) string {
	return fmt.Sprintf(`name: fresh
agent_provider: {template: codex, forward_host_credentials: true, refresh_host_credentials: %t}
egress:
  routes:
    - host: auth.openai.com
      upstream: {address: %q, ca_file: %q}
`, refresh, ep.addr, ep.caFile)
}

// TestRefresherFollowsTheManifest: the plane runs one refresher per login
// a bottle asks to keep fresh, sends its refreshes where the bottle's
// auth.openai.com route says now (not where it said when the refresher
// started), and stops it when no bottle asks any more.
func TestRefresherFollowsTheManifest(t *testing.T) {
	oauth := standin.NewOAuth("acct-1", time.Hour)
	first, second := newTokenEndpoint(t, oauth), newTokenEndpoint(t, oauth)
	home := t.TempDir()
	authJSON := filepath.Join(home, "auth.json")
	require.NoError(t, os.WriteFile(authJSON, oauth.AuthJSON(oauth.Login(), time.Now()), 0o600))

	clock := &fakeClock{t: time.Now()}
	tp := newTestPlaneWith(t, refreshingManifest(true, first), clock, func(p *plane) { p.cfg.codexHome = home })
	require.Len(t, tp.refreshers, 1)
	hr := tp.refreshers[authJSON]
	require.NotNil(t, hr)

	// The manifest now sends auth.openai.com elsewhere: so does the
	// refresher, and nothing more goes to the first endpoint.
	replaceManifest(t, tp.bottles[0].manifest, refreshingManifest(true, second))
	tp.reloadAll(context.Background(), "test")
	require.Same(t, hr, tp.refreshers[authJSON], "one refresher per login, kept across reloads")
	hr.r.Recover() // refresh now, not in 45 minutes
	require.Eventually(t, func() bool { return second.hits.Load() == 1 }, 30*time.Second, 10*time.Millisecond)
	assert.Zero(t, first.hits.Load(), "the refresh token went where the manifest no longer says")
	assert.Empty(t, hr.r.State().Error)

	// No bottle asks any more: the refresher stops.
	replaceManifest(t, tp.bottles[0].manifest, refreshingManifest(false, second))
	tp.reloadAll(context.Background(), "test")
	assert.Empty(t, tp.refreshers)
}
