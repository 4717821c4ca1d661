package envoy

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/egressgate/egressgate/internal/testenv"
	"github.com/egressgate/egressgate/xdsauth"
)

// streamOutcome is what the xDS server made of one of Envoy's streams: the
// authenticated node, or the status it was refused with.
type streamOutcome struct {
	node string
	err  error
}

// startAuthXDS serves ADS (empty snapshots) behind xdsauth's interceptor
// and node guard on a loopback port, reporting each stream's outcome.
func startAuthXDS(t *testing.T, auth *xdsauth.Authority) (int, <-chan streamOutcome) {
	t.Helper()
	outcomes := make(chan streamOutcome, 64)
	check := auth.StreamInterceptor(time.Now)
	record := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		err := check(srv, ss, info, func(srv any, ss grpc.ServerStream) error {
			node, _ := xdsauth.NodeFromContext(ss.Context())
			outcomes <- streamOutcome{node: node}
			return handler(srv, ss)
		})
		if err != nil {
			outcomes <- streamOutcome{err: err}
		}
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	snapshots := cache.NewSnapshotCache(true, cache.IDHash{}, nil)
	xds := serverv3.NewServer(ctx, snapshots, xdsauth.NewNodeGuard().Callbacks(nil))
	g := grpc.NewServer(grpc.StreamInterceptor(record))
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, xds)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(func() {
		g.Stop()
		cancel()
	})
	return lis.Addr().(*net.TCPAddr).Port, outcomes
}

func optionsWithToken(t *testing.T, xdsPort int, token string) Options {
	t.Helper()
	o := testOptions(t, xdsPort)
	cfg, err := RenderBootstrap(BootstrapParams{NodeID: "test", XDSHost: "127.0.0.1", XDSPort: xdsPort,
		AdminSocket: filepath.Join(filepath.Dir(o.ConfigPath), "admin.sock"), XDSToken: token})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(o.ConfigPath, cfg, 0o600))
	return o
}

// A real Envoy must carry the bootstrap's token on its ADS stream, and the
// server must hold it to the node it was minted for.
func TestEnvoySendsXDSToken(t *testing.T) {
	auth, err := xdsauth.LoadOrCreateKey(t.TempDir())
	require.NoError(t, err)
	mint := func(node string) string {
		token, _, err := auth.EnsureToken(node, xdsauth.RoleEnvoy, time.Now())
		require.NoError(t, err)
		return token
	}
	tests := []struct {
		name     string
		token    string
		wantNode string
		wantErr  string
	}{
		{name: "own token", token: mint("test"), wantNode: "test"},
		{name: "no token", wantErr: "no authorization metadata"},
		{name: "another bottle's token", token: mint("other"), wantErr: `node "test" presented a token for "other"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port, outcomes := startAuthXDS(t, auth)
			startEnvoy(t, t.Context(), optionsWithToken(t, port, tt.token))
			got := firstOutcome(t, outcomes, tt.wantErr != "")
			if tt.wantErr == "" {
				require.Equal(t, tt.wantNode, got.node)
				return
			}
			require.Contains(t, status.Convert(got.err).Message(), tt.wantErr)
		})
	}
}

// firstOutcome waits for the first stream outcome, or with wantErr the
// first refusal (a stream refused by the node guard is first reported as
// authenticated, when it opens).
func firstOutcome(t *testing.T, outcomes <-chan streamOutcome, wantErr bool) streamOutcome {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case o := <-outcomes:
			if !wantErr || o.err != nil {
				return o
			}
		case <-timeout:
			t.Fatal("envoy opened no xDS stream")
		}
	}
}

// Envoy quotes the whole bootstrap when it cannot parse it; the error
// Validate returns must not carry the token along.
func TestValidateRedactsTheXDSToken(t *testing.T) {
	bin := testenv.EnvoyBinary(t)
	token := mintToken(t, "demo")
	cfg, err := RenderBootstrap(BootstrapParams{NodeID: "demo", XDSHost: "127.0.0.1", XDSPort: 18000, AdminSocket: testSocket, XDSToken: token})
	require.NoError(t, err)
	broken := strings.Replace(string(cfg), "connect_timeout: 1s", "connect_timeout: soon", 1)
	require.NotEqual(t, string(cfg), broken)

	err = Validate(t.Context(), bin, writeFile(t, "bootstrap.yaml", []byte(broken)))
	require.ErrorContains(t, err, "connect_timeout", "Envoy's reason survives")
	require.ErrorContains(t, err, "<redacted>")
	for _, part := range strings.Split(token, ".") {
		require.NotContains(t, err.Error(), part)
	}
}
