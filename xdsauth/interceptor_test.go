package xdsauth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	listenerservice "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
)

// xdsHarness is a real gRPC server over bufconn running go-control-plane's
// ADS and LDS services with the interceptors and the node guard installed,
// and an empty snapshot for bottles "a" and "b".
type xdsHarness struct {
	auth   *Authority
	conn   *grpc.ClientConn
	opened chan string // NodeFromContext of each opened stream
}

func startXDS(t *testing.T) *xdsHarness {
	t.Helper()
	h := &xdsHarness{auth: newAuthority(t), opened: make(chan string, 16)}
	snapshots := cache.NewSnapshotCache(false, cache.IDHash{}, nil)
	for _, node := range []string{"a", "b"} {
		// Empty but present types: a type missing from the snapshot has no
		// version, and the cache would never answer a request for it.
		snap, err := cache.NewSnapshot("version-"+node, map[resource.Type][]types.Resource{
			resource.ListenerType: {}, resource.ClusterType: {},
		})
		require.NoError(t, err)
		require.NoError(t, snapshots.SetSnapshot(t.Context(), node, snap))
	}
	record := serverv3.CallbackFuncs{StreamOpenFunc: func(ctx context.Context, _ int64, _ string) error {
		node, _ := NodeFromContext(ctx)
		h.opened <- node
		return nil
	}}
	ctx, cancel := context.WithCancel(context.Background())
	xds := serverv3.NewServer(ctx, snapshots, NewNodeGuard().Callbacks(record))
	clock := func() time.Time { return testNow }
	g := grpc.NewServer(grpc.StreamInterceptor(h.auth.StreamInterceptor(clock)), grpc.UnaryInterceptor(h.auth.UnaryInterceptor(clock)))
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, xds)
	listenerservice.RegisterListenerDiscoveryServiceServer(g, xds)

	lis := bufconn.Listen(1 << 20)
	go func() { _ = g.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() {
		conn.Close()
		g.Stop()
		cancel()
	})
	h.conn = conn
	return h
}

func (h *xdsHarness) mint(t *testing.T, node string) string {
	t.Helper()
	token, _, err := h.auth.EnsureToken(node, RoleEnvoy, testNow)
	require.NoError(t, err)
	return token
}

func withToken(token string) []grpc.CallOption {
	if token == "" {
		return nil
	}
	return []grpc.CallOption{grpc.PerRPCCredentials(PerRPCCredentials(token))}
}

func listenerRequest(node string) *discoveryv3.DiscoveryRequest {
	return &discoveryv3.DiscoveryRequest{Node: nodeProto(node), TypeUrl: resource.ListenerType}
}

func clusterRequest(node string) *discoveryv3.DiscoveryRequest {
	return &discoveryv3.DiscoveryRequest{Node: nodeProto(node), TypeUrl: resource.ClusterType}
}

// nodeProto leaves the node out for "", as Envoy does after a stream's
// first message (set_node_on_first_message_only).
func nodeProto(id string) *corev3.Node {
	if id == "" {
		return nil
	}
	return &corev3.Node{Id: id}
}

// exchange sends each request in turn on one ADS stream and returns the
// last response, or the first error. Each request must subscribe to a new
// type, so that each gets a response. A refused stream may accept a Send
// (io.EOF) before its status arrives, so the status is read with Recv.
func exchange(ctx context.Context, conn *grpc.ClientConn, token string, reqs ...*discoveryv3.DiscoveryRequest) (*discoveryv3.DiscoveryResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx, withToken(token)...)
	if err != nil {
		return nil, err
	}
	var resp *discoveryv3.DiscoveryResponse
	for _, req := range reqs {
		if err := stream.Send(req); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		if resp, err = stream.Recv(); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

func requireStatus(t *testing.T, err error, code codes.Code, msg string, token string) {
	t.Helper()
	require.Error(t, err)
	st := status.Convert(err)
	require.Equal(t, code, st.Code(), st.Message())
	require.Contains(t, st.Message(), msg)
	if token != "" {
		require.NotContains(t, st.Message(), token, "a refusal never echoes the token")
	}
}

func TestADSStreamWithValidTokenIsServedAndAttributed(t *testing.T) {
	h := startXDS(t)
	// The second request names no node, as Envoy does after the first
	// message; it is still served from bottle a's snapshot.
	resp, err := exchange(t.Context(), h.conn, h.mint(t, "a"), listenerRequest("a"), clusterRequest(""))
	require.NoError(t, err)
	require.Equal(t, "version-a", resp.GetVersionInfo(), "bottle a gets its own snapshot")
	require.Equal(t, "a", <-h.opened, "the stream context carries the token's node")
}

func TestADSStreamRefusals(t *testing.T) {
	h := startXDS(t)
	hmacKey := make([]byte, 32)
	_, err := rand.Read(hmacKey)
	require.NoError(t, err)
	forged := sign(t, jwt.SigningMethodHS256, hmacKey, withClaims(func(c *jwt.RegisteredClaims) { c.Subject = "a" }))
	foreign, err := newAuthority(t).Mint("a", RoleEnvoy, testNow, time.Hour)
	require.NoError(t, err)
	expired, err := h.auth.Mint("a", RoleEnvoy, testNow.Add(-2*time.Hour), time.Hour)
	require.NoError(t, err)
	unregistered, err := h.auth.Mint("a", RoleEnvoy, testNow, time.Hour)
	require.NoError(t, err)
	rotated := h.mint(t, "b")
	require.NoError(t, h.auth.Rotate("b", testNow))
	removed := h.mint(t, "c")
	require.NoError(t, h.auth.RemoveTokens("c"))

	tests := []struct {
		name  string
		token string
		reqs  []*discoveryv3.DiscoveryRequest
		code  codes.Code
		msg   string
	}{
		{"no token", "", []*discoveryv3.DiscoveryRequest{listenerRequest("a")}, codes.Unauthenticated, "no authorization metadata"},
		{"forged HS256", forged, []*discoveryv3.DiscoveryRequest{listenerRequest("a")}, codes.Unauthenticated, "xds token rejected"},
		{"signed by another egressgate", foreign, []*discoveryv3.DiscoveryRequest{listenerRequest("a")}, codes.Unauthenticated, "signature is invalid"},
		{"expired", expired, []*discoveryv3.DiscoveryRequest{listenerRequest("a")}, codes.Unauthenticated, "expired"},
		{"signed by us but never handed out", unregistered, []*discoveryv3.DiscoveryRequest{listenerRequest("a")}, codes.Unauthenticated, "revoked"},
		{"rotated", rotated, []*discoveryv3.DiscoveryRequest{listenerRequest("b")}, codes.Unauthenticated, "revoked"},
		{"its bottle removed", removed, []*discoveryv3.DiscoveryRequest{listenerRequest("c")}, codes.Unauthenticated, "revoked"},
		{"another bottle's token", h.mint(t, "b"), []*discoveryv3.DiscoveryRequest{listenerRequest("a")}, codes.PermissionDenied, `node "a" presented a token for "b"`},
		{"node switched mid-stream", h.mint(t, "a"), []*discoveryv3.DiscoveryRequest{listenerRequest("a"), clusterRequest("b")}, codes.PermissionDenied, `node "b" presented a token for "a"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := exchange(t.Context(), h.conn, tt.token, tt.reqs...)
			requireStatus(t, err, tt.code, tt.msg, tt.token)
		})
	}
}

func TestADSRefusesMalformedAuthorization(t *testing.T) {
	h := startXDS(t)
	token := h.mint(t, "a")
	for _, md := range [][]string{
		{MetadataKey, "Basic " + token},
		{MetadataKey, token},
		{MetadataKey, "Bearer "},
		{MetadataKey, "Bearer " + token, MetadataKey, "Bearer " + token},
	} {
		t.Run(fmt.Sprint(len(md)/2, " values"), func(t *testing.T) {
			ctx := metadata.AppendToOutgoingContext(t.Context(), md...)
			_, err := exchange(ctx, h.conn, "", listenerRequest("a"))
			requireStatus(t, err, codes.Unauthenticated, "authorization metadata", token)
		})
	}
	// The scheme is case-insensitive.
	ctx := metadata.AppendToOutgoingContext(t.Context(), MetadataKey, "bearer "+token)
	_, err := exchange(ctx, h.conn, "", listenerRequest("a"))
	require.NoError(t, err)
}

func TestDeltaStreamWithAnotherBottlesTokenIsRefused(t *testing.T) {
	h := startXDS(t)
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(h.conn).DeltaAggregatedResources(t.Context(), withToken(h.mint(t, "b"))...)
	require.NoError(t, err)
	err = stream.Send(&discoveryv3.DeltaDiscoveryRequest{Node: &corev3.Node{Id: "a"}, TypeUrl: resource.ListenerType})
	if err == nil || errors.Is(err, io.EOF) {
		_, err = stream.Recv()
	}
	requireStatus(t, err, codes.PermissionDenied, `node "a" presented a token for "b"`, "")
}

// go-control-plane's per-type services also answer unary Fetch calls with
// a node's resources; they must be guarded like the streams.
func TestFetchIsAuthenticatedAndBoundToTheNode(t *testing.T) {
	h := startXDS(t)
	lds := listenerservice.NewListenerDiscoveryServiceClient(h.conn)

	_, err := lds.FetchListeners(t.Context(), listenerRequest("a"))
	requireStatus(t, err, codes.Unauthenticated, "no authorization metadata", "")

	_, err = lds.FetchListeners(t.Context(), listenerRequest("a"), withToken(h.mint(t, "b"))...)
	requireStatus(t, err, codes.PermissionDenied, `node "a" presented a token for "b"`, "")

	_, err = lds.FetchListeners(t.Context(), listenerRequest(""), withToken(h.mint(t, "a"))...)
	requireStatus(t, err, codes.PermissionDenied, "names no node", "")

	resp, err := lds.FetchListeners(t.Context(), listenerRequest("a"), withToken(h.mint(t, "a"))...)
	require.NoError(t, err)
	require.Equal(t, "version-a", resp.GetVersionInfo())
}

// TestRevocationEndsOpenStreams: a stream opened before its token was
// rotated must not go on receiving updates; EndRevoked ends it, and ends
// no stream whose token is still current.
func TestRevocationEndsOpenStreams(t *testing.T) {
	h := startXDS(t)
	open := func(node string) discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient {
		stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(h.conn).StreamAggregatedResources(t.Context(), withToken(h.mint(t, node))...)
		require.NoError(t, err)
		require.NoError(t, stream.Send(listenerRequest(node)))
		_, err = stream.Recv()
		require.NoError(t, err)
		return stream
	}
	a, b := open("a"), open("b")
	require.Equal(t, 0, h.auth.EndRevoked(), "nothing revoked yet")

	require.NoError(t, h.auth.Rotate("a", testNow))
	require.Equal(t, 1, h.auth.EndRevoked())
	_, err := a.Recv()
	requireStatus(t, err, codes.Unauthenticated, "revoked", "")

	require.NoError(t, b.Send(clusterRequest("")))
	_, err = b.Recv()
	require.NoError(t, err, "bottle b's stream is untouched")
}

func TestPerRPCCredentialsNeverPrintTheToken(t *testing.T) {
	creds := PerRPCCredentials("header.payload.signature")
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		require.NotContains(t, fmt.Sprintf(verb, creds), "payload", verb)
	}
	md, err := creds.GetRequestMetadata(t.Context())
	require.NoError(t, err)
	require.Equal(t, map[string]string{"authorization": "Bearer header.payload.signature"}, md)
}

// TestAuditStreamTakesOnlyAnAuditKey: the audit log method is opened with
// a bottle's audit key and node, and nothing else gets through: no key,
// another bottle's key, or an xDS token (which is no audit key); an audit
// key opens no other method.
func TestAuditStreamTakesOnlyAnAuditKey(t *testing.T) {
	a, err := LoadOrCreateKey(t.TempDir())
	require.NoError(t, err)
	other, err := LoadOrCreateKey(t.TempDir())
	require.NoError(t, err)
	token, _, err := a.EnsureToken("demo", RoleEnvoy, time.Now())
	require.NoError(t, err)
	intercept := a.StreamInterceptor(time.Now)
	call := func(method string, md ...string) (string, error) {
		ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(md...))
		var node string
		err := intercept(nil, &fakeStream{ctx: ctx}, &grpc.StreamServerInfo{FullMethod: method}, func(_ any, ss grpc.ServerStream) error {
			node, _ = NodeFromContext(ss.Context())
			return nil
		})
		return node, err
	}
	node, err := call(AuditLogMethod, MetadataAuditNode, "demo", MetadataAuditKey, a.AuditKey("demo"))
	require.NoError(t, err)
	assert.Equal(t, "demo", node)

	for name, md := range map[string][]string{
		"nothing":            nil,
		"another node":       {MetadataAuditNode, "other", MetadataAuditKey, a.AuditKey("demo")},
		"another authority":  {MetadataAuditNode, "demo", MetadataAuditKey, other.AuditKey("demo")},
		"an xDS token":       {MetadataKey, "Bearer " + token},
		"the token as a key": {MetadataAuditNode, "demo", MetadataAuditKey, token},
	} {
		_, err := call(AuditLogMethod, md...)
		assert.Equal(t, codes.Unauthenticated, status.Code(err), name)
	}
	_, err = call("/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources", MetadataAuditNode, "demo", MetadataAuditKey, a.AuditKey("demo"))
	assert.Equal(t, codes.Unauthenticated, status.Code(err), "an audit key opens no xDS stream")
}

// fakeStream is a grpc.ServerStream with a context and nothing else.
type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *fakeStream) Context() context.Context { return s.ctx }
