package xds

import (
	"context"
	"fmt"
	"log/slog"

	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	listenerservice "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	routeservice "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"
	secretservice "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
)

// Server serves each bottle's snapshot over ADS and tracks what each
// bottle's Envoy has accepted.
type Server struct {
	cache cache.SnapshotCache
	acks  *ackTracker
	xds   serverv3.Server
}

// NewServer returns a Server whose streams live until ctx is done.
func NewServer(ctx context.Context, log *slog.Logger) *Server {
	acks := newAckTracker(log)
	// ads=true: the cache answers only once every resource named in a
	// request exists, so Envoy never sees a listener before its routes.
	c := cache.NewSnapshotCache(true, cache.IDHash{}, nil)
	return &Server{cache: c, acks: acks, xds: serverv3.NewServer(ctx, c, acks.callbacks())}
}

// Register adds the ADS service (and the per-type services, for Envoys
// configured without ADS) to g.
func (s *Server) Register(g *grpc.Server) {
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, s.xds)
	listenerservice.RegisterListenerDiscoveryServiceServer(g, s.xds)
	routeservice.RegisterRouteDiscoveryServiceServer(g, s.xds)
	clusterservice.RegisterClusterDiscoveryServiceServer(g, s.xds)
	secretservice.RegisterSecretDiscoveryServiceServer(g, s.xds)
}

// SetSnapshot makes snap the configuration of node's Envoy.
func (s *Server) SetSnapshot(ctx context.Context, node string, snap *cache.Snapshot) error {
	s.acks.expect(node, snap)
	if err := s.cache.SetSnapshot(ctx, node, snap); err != nil {
		return fmt.Errorf("set snapshot for %s: %w", node, err)
	}
	return nil
}

// WaitAcked blocks until node's Envoy has acknowledged every resource type
// of the snapshot last set for it, or rejected one (an error quoting Envoy's
// reason), or ctx ends.
func (s *Server) WaitAcked(ctx context.Context, node string) error {
	return s.acks.wait(ctx, node)
}

// Acked returns the snapshot version node's Envoy has fully acknowledged, or
// "" if none yet.
func (s *Server) Acked(node string) string { return s.acks.acked(node) }
