package xdsserver

import (
	"context"
	"log/slog"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/egressgate/egressgate/internal/testenv"
)

// TestReconnectResend pins what the tracker assumes of go-control-plane
// (see ackTracker): a stream reopened with the current version is sent
// again every resource of a type that has some, and nothing for a type
// that has none, which is then acknowledged by the request alone.
func TestReconnectResend(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := NewServer(ctx, slog.New(slog.DiscardHandler), nil)
	conn := serve(t, srv)
	node := func(bottle string) *corev3.Node { return &corev3.Node{Id: bottle, Cluster: ExtProcCluster} }

	for _, tt := range []struct {
		name    string
		bottle  string
		secrets []string
		resend  bool
	}{
		{name: "with resources: sent again", bottle: "full", secrets: []string{"slot/EGRESS_TOKEN_0"}, resend: true},
		{name: "without: nothing sent, acknowledged all the same", bottle: "empty", secrets: nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bottle := tt.bottle
			key := ExtProcNode(bottle)
			snap := sidecarSnapshot(t, "s1", tt.secrets...)
			require.NoError(t, srv.SetSnapshot(ctx, key, snap))

			// First stream: a fresh sidecar takes s1 and ACKs it.
			first, stop := openStream(t, ctx, conn)
			require.NoError(t, first.Send(&discoveryv3.DiscoveryRequest{Node: node(bottle), TypeUrl: resource.SecretType}))
			resp, err := first.Recv()
			require.NoError(t, err)
			require.Equal(t, "s1", resp.GetVersionInfo())
			require.NoError(t, first.Send(&discoveryv3.DiscoveryRequest{TypeUrl: resource.SecretType, VersionInfo: "s1", ResponseNonce: resp.GetNonce()}))
			waitAcked(t, srv, key)

			stop()
			require.Eventually(t, func() bool { return !srv.Connected(key) }, 5*time.Second, 5*time.Millisecond)
			require.Empty(t, srv.Acked(key), "a node with no stream holds nothing we know of")

			// Second stream: the sidecar says it holds s1.
			second, _ := openStream(t, ctx, conn)
			require.NoError(t, second.Send(&discoveryv3.DiscoveryRequest{Node: node(bottle), TypeUrl: resource.SecretType, VersionInfo: "s1"}))
			if tt.resend {
				resp, err := second.Recv()
				require.NoError(t, err)
				require.Equal(t, "s1", resp.GetVersionInfo())
				require.Len(t, resp.GetResources(), len(tt.secrets))
				require.Empty(t, srv.Acked(key), "not before the resend is ACKed")
				require.NoError(t, second.Send(&discoveryv3.DiscoveryRequest{TypeUrl: resource.SecretType, VersionInfo: "s1", ResponseNonce: resp.GetNonce()}))
				waitAcked(t, srv, key)
				return
			}
			waitAcked(t, srv, key)
			// Nothing was sent for s1: the next response is the next
			// version's.
			require.NoError(t, srv.SetSnapshot(ctx, key, sidecarSnapshot(t, "s2", "slot/EGRESS_TOKEN_0")))
			resp, err = second.Recv()
			require.NoError(t, err)
			require.Equal(t, "s2", resp.GetVersionInfo())
		})
	}
}

func serve(t *testing.T, srv *Server) *grpc.ClientConn {
	return testenv.ServeGRPC(t, srv.Register)
}

func openStream(t *testing.T, ctx context.Context, conn *grpc.ClientConn) (discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	s, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	require.NoError(t, err)
	return s, cancel
}

func waitAcked(t *testing.T, srv *Server, key string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, srv.WaitAcked(ctx, key))
}
