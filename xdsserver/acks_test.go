package xdsserver

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/require"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/types/known/anypb"
)

// fakeEnvoy drives an ackTracker the way an Envoy's ADS stream does.
type fakeEnvoy struct {
	t      *testing.T
	tr     *ackTracker
	snap   *cache.Snapshot
	stream int64
	nonce  int
}

func newFakeEnvoy(t *testing.T, snap *cache.Snapshot) *fakeEnvoy {
	tr := newAckTracker(slog.New(slog.DiscardHandler))
	tr.expect("codex-bottle", snap)
	e := &fakeEnvoy{t: t, tr: tr, snap: snap, stream: 1}
	// The first request of a stream names the node and ACKs nothing.
	tr.onRequest(e.stream, &discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: "codex-bottle"}, TypeUrl: resource.ClusterType})
	return e
}

// deliver sends a response of typ at version carrying names (all of the
// snapshot's when none are given) and returns its nonce.
func (e *fakeEnvoy) deliver(typ, version string, names ...string) string {
	res := e.snap.GetResources(typ)
	if len(names) == 0 {
		for n := range res {
			names = append(names, n)
		}
	}
	resp := &discoveryv3.DiscoveryResponse{TypeUrl: typ, VersionInfo: version}
	for _, n := range names {
		a, err := anypb.New(res[n])
		require.NoError(e.t, err)
		resp.Resources = append(resp.Resources, a)
	}
	e.nonce++
	resp.Nonce = fmt.Sprint(e.nonce)
	e.tr.onResponse(e.stream, resp)
	return resp.Nonce
}

func (e *fakeEnvoy) ack(typ, version, nonce string) {
	e.tr.onRequest(e.stream, &discoveryv3.DiscoveryRequest{TypeUrl: typ, VersionInfo: version, ResponseNonce: nonce})
}

func (e *fakeEnvoy) waitErr() error {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	return e.tr.wait(ctx, "codex-bottle")
}

func TestAckTracker(t *testing.T) {
	snap := envoySnapshot(t, "v1")
	v := snap.GetVersion(resource.ListenerType)
	allTypes := []string{resource.ClusterType, resource.ListenerType, resource.RouteType, resource.SecretType}

	t.Run("ready only when every type ACKed the version with all its resources", func(t *testing.T) {
		e := newFakeEnvoy(t, snap)
		for _, typ := range allTypes[:3] {
			e.ack(typ, v, e.deliver(typ, v))
		}
		require.Error(t, e.waitErr(), "secrets not yet ACKed")
		e.ack(resource.SecretType, v, e.deliver(resource.SecretType, v, "leaf/chatgpt.com"))
		require.Error(t, e.waitErr(), "an ACK of some of the secrets is not an ACK of all")
		e.ack(resource.SecretType, v, e.deliver(resource.SecretType, v))
		require.NoError(t, e.waitErr())
		require.Equal(t, v, e.tr.acked("codex-bottle"))
	})

	t.Run("a request without a matching response acknowledges nothing", func(t *testing.T) {
		e := newFakeEnvoy(t, snap)
		for _, typ := range allTypes {
			e.ack(typ, v, "no-such-nonce")
		}
		require.Error(t, e.waitErr())
	})

	t.Run("an older version is not an ACK of this one", func(t *testing.T) {
		e := newFakeEnvoy(t, snap)
		for _, typ := range allTypes {
			e.ack(typ, "older", e.deliver(typ, "older"))
		}
		require.Error(t, e.waitErr())
	})

	t.Run("NACK fails the wait with Envoy's reason", func(t *testing.T) {
		e := newFakeEnvoy(t, snap)
		nonce := e.deliver(resource.ListenerType, v)
		e.tr.onRequest(e.stream, &discoveryv3.DiscoveryRequest{
			TypeUrl: resource.ListenerType, ResponseNonce: nonce,
			ErrorDetail: &statuspb.Status{Message: "bad listener"},
		})
		err := e.waitErr()
		require.ErrorContains(t, err, "bad listener")
		require.ErrorContains(t, err, "Listener")
	})

	t.Run("a stream that never named its node is ignored", func(t *testing.T) {
		tr := newAckTracker(slog.New(slog.DiscardHandler))
		tr.expect("codex-bottle", snap)
		e := &fakeEnvoy{t: t, tr: tr, snap: snap, stream: 9}
		for _, typ := range allTypes {
			e.ack(typ, v, e.deliver(typ, v))
		}
		require.Error(t, e.waitErr())
		require.False(t, tr.connected("codex-bottle"))
	})
}

// envoySnapshot is an Envoy's snapshot at version: the tracker reads only
// types and names, so one resource of each type (two secrets, to tell an
// ACK of some from an ACK of all) stands for a translated bottle.
func envoySnapshot(t *testing.T, version string) *cache.Snapshot {
	t.Helper()
	snap, err := cache.NewSnapshot(version, map[resource.Type][]types.Resource{
		resource.ListenerType: {&listenerv3.Listener{Name: "proxy"}},
		resource.ClusterType:  {&clusterv3.Cluster{Name: "chatgpt.com"}},
		resource.RouteType:    {&routev3.RouteConfiguration{Name: "mitm/chatgpt.com"}},
		resource.SecretType:   {&tlsv3.Secret{Name: "leaf/chatgpt.com"}, &tlsv3.Secret{Name: "leaf/api.openai.com"}},
	})
	require.NoError(t, err)
	return snap
}
