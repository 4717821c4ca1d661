package serve

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/admin"
	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/pki"
	"github.com/egressgate/egressgate/xdsserver"
)

// fakeClock is a clock a test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// testPlane is a serve-mode plane on a real (Envoy-less) xDS server, or
// on a fake one its edit puts in, with its state in a temp dir and its
// slots handed to a recorder.
type testPlane struct {
	*plane
	slots [][]config.Slot
	// server is the real xDS server the plane was built with, for tests
	// that serve it to ADS peers.
	server   *xdsserver.Server
	registry *prometheus.Registry
}

func newTestPlane(t *testing.T, manifest string, clock *fakeClock) *testPlane {
	t.Helper()
	return newTestPlaneWith(t, manifest, clock, func(*plane) {})
}

// newTestPlaneWith is newTestPlane with the plane edited before its first
// load.
func newTestPlaneWith(t *testing.T, manifest string, clock *fakeClock, edit func(*plane)) *testPlane {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.LoadOrCreateCA(filepath.Join(dir, "state"), clock.now())
	require.NoError(t, err)
	path := filepath.Join(dir, "bottle.yaml")
	require.NoError(t, os.WriteFile(path, []byte(manifest), 0o600))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	tp := &testPlane{server: xdsserver.NewServer(ctx, nil, nil), registry: prometheus.NewRegistry()}
	tp.plane = &plane{
		cfg: planeConfig{
			mode: "serve", proxyListen: "127.0.0.1:3128", extProcAddr: "127.0.0.1:9001",
			systemCAFile: "/etc/ssl/certs/ca-certificates.crt",
			extProcKey:   func(string) (string, error) { return "test-caller-key", nil },
		},
		log: slog.New(slog.DiscardHandler), ca: ca, xds: tp.server, now: clock.now,
		localExtProc: func(_ string, in extProcInputs) { tp.slots = append(tp.slots, in.slots) },
	}
	edit(tp.plane)
	tp.metrics = admin.NewMetrics(tp.registry, tp.plane.slots)
	tp.addManifests([]string{path})
	require.NoError(t, tp.loadAll(ctx))
	return tp
}

// leafNotAfter is the expiry of the leaf certificate the served snapshot
// of bottle 0 holds for host.
func (tp *testPlane) leafNotAfter(t *testing.T, host string) time.Time {
	t.Helper()
	c := tp.bottles[0].current
	require.NotNil(t, c)
	res, ok := c.snapshot.GetResources(resource.SecretType)["leaf/"+host]
	require.True(t, ok, "no leaf for %s", host)
	chain := res.(*tlsv3.Secret).GetTlsCertificate().GetCertificateChain().GetInlineBytes()
	block, _ := pem.Decode(chain)
	require.NotNil(t, block)
	cert, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	return cert.NotAfter
}

func replaceManifest(t *testing.T, path, text string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
}

func routeHosts(p *config.Policy) []string {
	var out []string
	for _, r := range p.Routes {
		out = append(out, r.Host)
	}
	return out
}
