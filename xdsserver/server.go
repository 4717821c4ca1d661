// Package xdsserver serves each bottle's snapshots over ADS: to the
// bottle's Envoy (package xds translates its snapshot) and to its split-mode
// ext_proc sidecar (package slotwire encodes its snapshot). It keys the
// nodes apart and tracks what each has acknowledged.
package xdsserver

import (
	"context"
	"fmt"
	"log/slog"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
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

// Guard puts access control in front of the server's own callbacks: every
// stream (SotW and delta) must be opened with one node's credentials and
// may only ask for that node's resources (DESIGN.md invariant 6).
// xdsauth.NodeGuard.Callbacks is one.
type Guard func(next serverv3.Callbacks) serverv3.Callbacks

// NewServer returns a Server whose streams live until ctx is done. A nil
// guard admits every stream (tests only).
func NewServer(ctx context.Context, log *slog.Logger, guard Guard) *Server {
	acks := newAckTracker(log)
	// ads=true: the cache answers only once every resource named in a
	// request exists, so Envoy never sees a listener before its routes.
	c := cache.NewSnapshotCache(true, NodeHash{}, nil)
	var cb serverv3.Callbacks = serverv3.CallbackFuncs{
		StreamRequestFunc: func(id int64, req *discoveryv3.DiscoveryRequest) error {
			acks.onRequest(id, req)
			return nil
		},
		StreamResponseFunc: func(_ context.Context, id int64, _ *discoveryv3.DiscoveryRequest, resp *discoveryv3.DiscoveryResponse) {
			acks.onResponse(id, resp)
		},
		StreamClosedFunc: func(id int64, _ *corev3.Node) { acks.closed(id) },
	}
	if guard != nil {
		cb = guard(cb)
	}
	return &Server{cache: c, acks: acks, xds: serverv3.NewServer(ctx, c, cb)}
}

// Register adds the ADS service to g. Only ADS: every bottle's Envoy is
// configured for it, and each extra service (per-type streams, unary Fetch)
// would be one more door for the guard to watch.
func (s *Server) Register(g *grpc.Server) {
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, s.xds)
}

// Observe tells events of pushes, ACKs and NACKs from now on. Call it
// before serving.
func (s *Server) Observe(events Events) {
	s.acks.mu.Lock()
	defer s.acks.mu.Unlock()
	s.acks.events = events
}

// SetSnapshot makes snap the configuration of node's Envoy.
func (s *Server) SetSnapshot(ctx context.Context, node string, snap *cache.Snapshot) error {
	s.acks.expect(node, snap)
	if err := s.cache.SetSnapshot(ctx, node, snap); err != nil {
		return fmt.Errorf("set snapshot for %s: %w", node, err)
	}
	return nil
}

// Withdraw stops serving node: its snapshot and what is known of its
// acknowledgements are dropped. Streams already open keep their last
// configuration until they end; the caller revokes their tokens to end them.
func (s *Server) Withdraw(node string) {
	s.cache.ClearSnapshot(node)
	s.acks.forget(node)
}

// WaitAcked blocks until node's Envoy has acknowledged every resource type
// of the snapshot last set for it, or rejected one (an error quoting Envoy's
// reason), or ctx ends.
func (s *Server) WaitAcked(ctx context.Context, node string) error {
	return s.acks.wait(ctx, node)
}

// Connected reports whether node's Envoy (or ext_proc) has an open stream.
func (s *Server) Connected(node string) bool { return s.acks.connected(node) }

// Acked returns the snapshot version node's Envoy has fully acknowledged, or
// "" if none yet.
func (s *Server) Acked(node string) string { return s.acks.acked(node) }
