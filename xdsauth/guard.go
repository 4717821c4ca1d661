package xdsauth

import (
	"context"
	"slices"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// NodeGuard binds each xDS stream to the node its token was minted for.
// The token is checked when the stream opens, but the node id the snapshot
// cache serves comes from the stream's requests; the guard refuses a
// request naming any other node. It is safe for concurrent use.
//
// go-control-plane numbers state-of-the-world and delta streams with two
// separate counters, so the same id can name two live streams; the Delta
// methods keep their own space. Callbacks wires all of them.
type NodeGuard struct {
	mu      sync.Mutex
	streams map[streamKey]Identity // -> whom the token speaks for
}

type streamKey struct {
	delta bool
	id    int64
}

// NewNodeGuard returns a guard with no open streams.
func NewNodeGuard() *NodeGuard {
	return &NodeGuard{streams: map[streamKey]Identity{}}
}

// Open remembers the authenticated node of ctx for a state-of-the-world
// stream (call from OnStreamOpen). Without one it fails, which ends the
// stream: a server missing the interceptor fails closed.
func (g *NodeGuard) Open(ctx context.Context, streamID int64) error {
	return g.open(ctx, streamKey{id: streamID})
}

// Check refuses a request on a state-of-the-world stream that names a node
// other than the token's, a node cluster its role may not present, or a
// resource type its role may not fetch (call from OnStreamRequest). A
// missing node is fine: Envoy names its node on a stream's first message
// only, and the server keeps that one.
func (g *NodeGuard) Check(streamID int64, node *corev3.Node, typeURL string) error {
	return g.check(streamKey{id: streamID}, node, typeURL)
}

// Close forgets a state-of-the-world stream (call from OnStreamClosed).
func (g *NodeGuard) Close(streamID int64) { g.close(streamKey{id: streamID}) }

// OpenDelta is Open for a delta stream (OnDeltaStreamOpen).
func (g *NodeGuard) OpenDelta(ctx context.Context, streamID int64) error {
	return g.open(ctx, streamKey{delta: true, id: streamID})
}

// CheckDelta is Check for a delta stream (OnStreamDeltaRequest).
func (g *NodeGuard) CheckDelta(streamID int64, node *corev3.Node, typeURL string) error {
	return g.check(streamKey{delta: true, id: streamID}, node, typeURL)
}

// CloseDelta is Close for a delta stream (OnDeltaStreamClosed).
func (g *NodeGuard) CloseDelta(streamID int64) { g.close(streamKey{delta: true, id: streamID}) }

func (g *NodeGuard) open(ctx context.Context, k streamKey) error {
	id, ok := IdentityFromContext(ctx)
	if !ok || !id.Role.valid() {
		return status.Errorf(codes.Unauthenticated, "xds stream %d has no authenticated node", k.id)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.streams[k] = id
	return nil
}

func (g *NodeGuard) check(k streamKey, node *corev3.Node, typeURL string) error {
	g.mu.Lock()
	id, ok := g.streams[k]
	g.mu.Unlock()
	if !ok {
		return status.Errorf(codes.Unauthenticated, "xds stream %d was not opened with a token", k.id)
	}
	return permit(id, node, typeURL, true)
}

func (g *NodeGuard) close(k streamKey) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.streams, k)
}

// CheckNode refuses a unary Fetch that its token may not make (call from
// OnFetchRequest). A fetch has a single message, so it must name its node.
func CheckNode(ctx context.Context, node *corev3.Node, typeURL string) error {
	id, ok := IdentityFromContext(ctx)
	if !ok || !id.Role.valid() {
		return status.Error(codes.Unauthenticated, "xds fetch has no authenticated node")
	}
	return permit(id, node, typeURL, false)
}

// roleTypes are the resource types each role may ask for: an Envoy what
// it is configured with (its secrets are its own leaf certificates), a
// sidecar its slot secrets only.
var roleTypes = map[Role][]string{
	RoleEnvoy: {
		resource.ListenerType, resource.RouteType, resource.ClusterType,
		resource.EndpointType, resource.SecretType,
	},
	RoleExtProc: {resource.SecretType},
}

// permit checks one request against the token's identity: the node id is
// the token's, the node cluster is the role's (it picks the snapshot, see
// xdsserver.NodeHash), and the type is one the role may fetch.
func permit(id Identity, node *corev3.Node, typeURL string, allowNoNode bool) error {
	switch {
	case node == nil && !allowNoNode:
		return status.Error(codes.PermissionDenied, "xds request names no node")
	case node != nil && node.GetId() != id.Node:
		// %.64q: the id comes from the client; quote it and bound its
		// length so it cannot forge or flood a log line.
		return status.Errorf(codes.PermissionDenied, "node %.64q presented a token for %q", node.GetId(), id.Node)
	case node != nil && (node.GetCluster() == ExtProcCluster) != (id.Role == RoleExtProc):
		return status.Errorf(codes.PermissionDenied, "node %q presented an %s token as cluster %.64q", id.Node, id.Role, node.GetCluster())
	case typeURL != "" && !slices.Contains(roleTypes[id.Role], typeURL):
		return status.Errorf(codes.PermissionDenied, "node %q: an %s token may not fetch %.100q", id.Node, id.Role, typeURL)
	}
	return nil
}

// Callbacks returns next with every stream and fetch guarded: a stream is
// opened in the guard before next sees it, and a request naming a foreign
// node is refused before next (or the snapshot cache) sees it. Use it as
// the callbacks of serverv3.NewServer so no xDS entry point is missed.
// A nil next means no other callbacks.
func (g *NodeGuard) Callbacks(next serverv3.Callbacks) serverv3.Callbacks {
	if next == nil {
		next = serverv3.CallbackFuncs{}
	}
	return guarded{Callbacks: next, g: g}
}

type guarded struct {
	serverv3.Callbacks
	g *NodeGuard
}

func (c guarded) OnStreamOpen(ctx context.Context, id int64, typeURL string) error {
	if err := c.g.Open(ctx, id); err != nil {
		return err
	}
	return c.Callbacks.OnStreamOpen(ctx, id, typeURL)
}

func (c guarded) OnStreamRequest(id int64, req *discoveryv3.DiscoveryRequest) error {
	if err := c.g.Check(id, req.GetNode(), req.GetTypeUrl()); err != nil {
		return err
	}
	return c.Callbacks.OnStreamRequest(id, req)
}

func (c guarded) OnStreamClosed(id int64, node *corev3.Node) {
	c.Callbacks.OnStreamClosed(id, node)
	c.g.Close(id)
}

func (c guarded) OnDeltaStreamOpen(ctx context.Context, id int64, typeURL string) error {
	if err := c.g.OpenDelta(ctx, id); err != nil {
		return err
	}
	return c.Callbacks.OnDeltaStreamOpen(ctx, id, typeURL)
}

func (c guarded) OnStreamDeltaRequest(id int64, req *discoveryv3.DeltaDiscoveryRequest) error {
	if err := c.g.CheckDelta(id, req.GetNode(), req.GetTypeUrl()); err != nil {
		return err
	}
	return c.Callbacks.OnStreamDeltaRequest(id, req)
}

func (c guarded) OnDeltaStreamClosed(id int64, node *corev3.Node) {
	c.Callbacks.OnDeltaStreamClosed(id, node)
	c.g.CloseDelta(id)
}

func (c guarded) OnFetchRequest(ctx context.Context, req *discoveryv3.DiscoveryRequest) error {
	if err := CheckNode(ctx, req.GetNode(), req.GetTypeUrl()); err != nil {
		return err
	}
	return c.Callbacks.OnFetchRequest(ctx, req)
}
