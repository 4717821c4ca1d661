package xdsserver

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
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

// fakeEnvoy drives an ackTracker the way an Envoy's (or a sidecar's) ADS
// stream does.
type fakeEnvoy struct {
	t      *testing.T
	tr     *ackTracker
	node   *corev3.Node
	key    string // the node's snapshot key
	snap   *cache.Snapshot
	stream int64
	nonce  int
}

func newFakeEnvoy(t *testing.T, snap *cache.Snapshot) *fakeEnvoy {
	return newFakeClient(t, &corev3.Node{Id: "codex-bottle"}, snap)
}

// newFakeClient opens a stream for node, whose snapshot is snap.
func newFakeClient(t *testing.T, node *corev3.Node, snap *cache.Snapshot) *fakeEnvoy {
	tr := newAckTracker(slog.New(slog.DiscardHandler))
	key := NodeHash{}.ID(node)
	tr.expect(key, snap)
	e := &fakeEnvoy{t: t, tr: tr, node: node, key: key, snap: snap, stream: 1}
	// The first request of a stream names the node and ACKs nothing.
	tr.onRequest(e.stream, &discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resource.SecretType})
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
	return e.tr.wait(ctx, e.key)
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

// sidecarSnapshot is a sidecar's snapshot at version: secrets only.
func sidecarSnapshot(t *testing.T, version string, secrets ...string) *cache.Snapshot {
	t.Helper()
	res := []types.Resource{}
	for _, name := range secrets {
		res = append(res, &tlsv3.Secret{Name: name})
	}
	snap, err := cache.NewSnapshot(version, map[resource.Type][]types.Resource{resource.SecretType: res})
	require.NoError(t, err)
	return snap
}

func TestAwaitedByNodeKind(t *testing.T) {
	bare, err := cache.NewSnapshot("v1", map[resource.Type][]types.Resource{
		resource.ListenerType: {&listenerv3.Listener{Name: "proxy"}},
		resource.ClusterType:  {&clusterv3.Cluster{Name: "extproc"}},
	})
	require.NoError(t, err)
	for _, tt := range []struct {
		name        string
		key         string
		snap        *cache.Snapshot
		want        map[string][]string
		wantVersion string
	}{{
		name: "envoy: every type its snapshot holds",
		key:  "codex-bottle", snap: envoySnapshot(t, "v1"),
		want: map[string][]string{
			resource.ListenerType: {"proxy"}, resource.ClusterType: {"chatgpt.com"},
			resource.RouteType: {"mitm/chatgpt.com"}, resource.SecretType: {"leaf/api.openai.com", "leaf/chatgpt.com"},
		},
		wantVersion: "v1",
	}, {
		name: "envoy: no routes or secrets, none awaited (Envoy asks for them only when named)",
		key:  "codex-bottle", snap: bare,
		want:        map[string][]string{resource.ListenerType: {"proxy"}, resource.ClusterType: {"extproc"}},
		wantVersion: "v1",
	}, {
		name: "sidecar: its secrets only",
		key:  ExtProcNode("codex-bottle"), snap: sidecarSnapshot(t, "s1", "slot/EGRESS_TOKEN_0", "extproc/server-cert"),
		want:        map[string][]string{resource.SecretType: {"extproc/server-cert", "slot/EGRESS_TOKEN_0"}},
		wantVersion: "s1",
	}, {
		name: "sidecar: no slots and no certificate still awaits the empty secret set",
		key:  ExtProcNode("codex-bottle"), snap: sidecarSnapshot(t, "s0"),
		want:        map[string][]string{resource.SecretType: {}},
		wantVersion: "s0",
	}} {
		t.Run(tt.name, func(t *testing.T) {
			got := awaited(tt.key, tt.snap)
			for _, names := range got {
				slices.Sort(names)
			}
			require.Equal(t, tt.want, got)
			require.Equal(t, tt.wantVersion, snapshotVersion(got, tt.snap))
		})
	}
}

func TestAckTrackerSidecar(t *testing.T) {
	sidecar := &corev3.Node{Id: "codex-bottle", Cluster: ExtProcCluster}

	t.Run("acknowledged once its secrets are, with no listeners or clusters", func(t *testing.T) {
		e := newFakeClient(t, sidecar, sidecarSnapshot(t, "s1", "slot/EGRESS_TOKEN_0", "extproc/server-cert"))
		require.Equal(t, "codex-bottle/extproc", e.key)
		require.Error(t, e.waitErr(), "nothing delivered yet")
		e.ack(resource.SecretType, "s1", e.deliver(resource.SecretType, "s1", "slot/EGRESS_TOKEN_0"))
		require.Error(t, e.waitErr(), "the server certificate has not arrived")
		e.ack(resource.SecretType, "s1", e.deliver(resource.SecretType, "s1"))
		require.NoError(t, e.waitErr())
		require.Equal(t, "s1", e.tr.acked(e.key))
		require.Empty(t, e.tr.acked("codex-bottle"), "the sidecar's ACK is not its Envoy's")
	})

	t.Run("an empty secret set is acknowledged too", func(t *testing.T) {
		e := newFakeClient(t, sidecar, sidecarSnapshot(t, "s0"))
		e.ack(resource.SecretType, "s0", e.deliver(resource.SecretType, "s0"))
		require.NoError(t, e.waitErr())
	})

	t.Run("NACK of a secret fails the wait", func(t *testing.T) {
		e := newFakeClient(t, sidecar, sidecarSnapshot(t, "s1", "slot/EGRESS_TOKEN_0"))
		nonce := e.deliver(resource.SecretType, "s1")
		e.tr.onRequest(e.stream, &discoveryv3.DiscoveryRequest{TypeUrl: resource.SecretType, ResponseNonce: nonce, ErrorDetail: &statuspb.Status{Message: "bad slot"}})
		require.ErrorContains(t, e.waitErr(), "bad slot")
	})
}

// ackAll delivers and ACKs every type the node awaits, at version.
func (e *fakeEnvoy) ackAll(version string) {
	for typ := range awaited(e.key, e.snap) {
		e.ack(typ, version, e.deliver(typ, version))
	}
}

// reconnect opens a new stream (keeping the old one unless it was closed)
// whose first request of each type the node awaits says it holds held.
func (e *fakeEnvoy) reconnect(held string) {
	e.stream++
	node := e.node
	for typ := range awaited(e.key, e.snap) {
		e.tr.onRequest(e.stream, &discoveryv3.DiscoveryRequest{Node: node, TypeUrl: typ, VersionInfo: held})
		node = nil // only the first request of a stream names the node
	}
}

func TestAckTrackerAcrossStreams(t *testing.T) {
	envoy, sidecar := &corev3.Node{Id: "codex-bottle"}, &corev3.Node{Id: "codex-bottle", Cluster: ExtProcCluster}
	for _, tt := range []struct {
		name string
		node *corev3.Node
		snap *cache.Snapshot
		// steps run after the node acknowledged snap in full on stream 1.
		steps         func(e *fakeEnvoy)
		wantAcked     string
		wantConnected bool
	}{{
		name: "disconnect: not connected, and nothing acknowledged",
		node: envoy, snap: envoySnapshot(t, "v1"),
		steps: func(e *fakeEnvoy) { e.tr.closed(e.stream) },
	}, {
		name: "reconnect with the current version of a type with no resources: acknowledged with no resend",
		node: sidecar, snap: sidecarSnapshot(t, "s0"),
		steps: func(e *fakeEnvoy) {
			e.tr.closed(e.stream)
			e.reconnect("s0")
		},
		wantAcked: "s0", wantConnected: true,
	}, {
		name: "reconnect with the current version of types with resources: acknowledged by the resend's ACK",
		node: envoy, snap: envoySnapshot(t, "v1"),
		steps: func(e *fakeEnvoy) {
			e.tr.closed(e.stream)
			e.reconnect("v1")
			require.Error(e.t, e.waitErr(), "names are only known from a response")
			e.ackAll("v1")
		},
		wantAcked: "v1", wantConnected: true,
	}, {
		name: "reconnect of a fresh Envoy: not acknowledged",
		node: envoy, snap: envoySnapshot(t, "v1"),
		steps: func(e *fakeEnvoy) {
			e.tr.closed(e.stream)
			e.reconnect("")
		},
		wantConnected: true,
	}, {
		name: "reconnect of a fresh Envoy: acknowledged once it ACKs",
		node: envoy, snap: envoySnapshot(t, "v1"),
		steps: func(e *fakeEnvoy) {
			e.tr.closed(e.stream)
			e.reconnect("")
			e.ackAll("v1")
		},
		wantAcked: "v1", wantConnected: true,
	}, {
		name: "reconnect with an older version: not acknowledged",
		node: sidecar, snap: sidecarSnapshot(t, "s0"),
		steps: func(e *fakeEnvoy) {
			e.tr.closed(e.stream)
			e.reconnect("older")
		},
		wantConnected: true,
	}, {
		name: "a restarted Envoy whose old stream has not closed yet: not acknowledged",
		node: envoy, snap: envoySnapshot(t, "v1"),
		steps:         func(e *fakeEnvoy) { e.reconnect("") },
		wantConnected: true,
	}, {
		name: "the old stream closing after the new one opened keeps the new one's state",
		node: sidecar, snap: sidecarSnapshot(t, "s0"),
		steps: func(e *fakeEnvoy) {
			e.reconnect("s0")
			e.tr.closed(e.stream - 1)
		},
		wantAcked: "s0", wantConnected: true,
	}} {
		t.Run(tt.name, func(t *testing.T) {
			e := newFakeClient(t, tt.node, tt.snap)
			version := snapshotVersion(awaited(e.key, tt.snap), tt.snap)
			e.ackAll(version)
			require.NoError(t, e.waitErr())
			require.Equal(t, version, e.tr.acked(e.key))

			tt.steps(e)
			require.Equal(t, tt.wantAcked, e.tr.acked(e.key))
			require.Equal(t, tt.wantConnected, e.tr.connected(e.key))
			if tt.wantAcked == "" {
				require.Error(t, e.waitErr())
			} else {
				require.NoError(t, e.waitErr())
			}
		})
	}
}
