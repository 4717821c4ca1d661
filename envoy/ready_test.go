package envoy

import (
	"context"
	"net"
	"testing"
	"time"

	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
)

// startADS serves an empty snapshot for node "test" on a loopback port:
// enough for Envoy to finish initialising and report LIVE.
func startADS(t *testing.T) int {
	t.Helper()
	snapshots := cachev3.NewSnapshotCache(true, cachev3.IDHash{}, nil)
	snap, err := cachev3.NewSnapshot("1", map[resource.Type][]types.Resource{
		resource.ClusterType:  {},
		resource.ListenerType: {},
	})
	require.NoError(t, err)
	require.NoError(t, snapshots.SetSnapshot(t.Context(), "test", snap))

	srv := grpc.NewServer()
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(srv, serverv3.NewServer(t.Context(), snapshots, nil))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return l.Addr().(*net.TCPAddr).Port
}

// TestWaitReadyWithADS also checks the bootstrap's ADS plumbing end to end:
// Envoy reaches LIVE only after fetching clusters and listeners over it.
func TestWaitReadyWithADS(t *testing.T) {
	p := startEnvoy(t, t.Context(), testOptions(t, startADS(t)))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	require.NoError(t, p.WaitReady(ctx))
}

func TestWaitReadyHonoursDeadlineWithoutADS(t *testing.T) {
	p := startEnvoy(t, t.Context(), testOptions(t, closedPort(t)))
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	err := p.WaitReady(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "waiting for envoy ready")
}
