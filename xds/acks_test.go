package xds

import (
	"context"
	"log/slog"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/require"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
)

func TestAckTracker(t *testing.T) {
	snap, err := translateManifest(t, "testdata/in/codex.yaml").Snapshot()
	require.NoError(t, err)
	version := snap.GetVersion(resource.ListenerType)
	allTypes := []string{resource.ClusterType, resource.ListenerType, resource.RouteType, resource.SecretType}

	ack := func(tr *ackTracker, stream int64, typ, v string) {
		require.NoError(t, tr.onRequest(stream, &discoveryv3.DiscoveryRequest{TypeUrl: typ, VersionInfo: v, ResponseNonce: "n"}))
	}
	open := func(tr *ackTracker, stream int64) {
		// The first request of a stream names the node and ACKs nothing.
		require.NoError(t, tr.onRequest(stream, &discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: "codex-bottle"}, TypeUrl: resource.ClusterType}))
	}
	waitFor := func(tr *ackTracker) error {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		return tr.wait(ctx, "codex-bottle")
	}

	t.Run("ready only when every type ACKed the version", func(t *testing.T) {
		tr := newAckTracker(slog.New(slog.DiscardHandler))
		tr.expect("codex-bottle", snap)
		open(tr, 1)
		for _, typ := range allTypes[:3] {
			ack(tr, 1, typ, version)
		}
		require.Error(t, waitFor(tr), "secrets not yet ACKed")
		ack(tr, 1, resource.SecretType, "older")
		require.Error(t, waitFor(tr), "an older version is not an ACK of this one")
		ack(tr, 1, resource.SecretType, version)
		require.NoError(t, waitFor(tr))
		require.Equal(t, version, tr.acked("codex-bottle"))
	})

	t.Run("NACK fails the wait with Envoy's reason", func(t *testing.T) {
		tr := newAckTracker(slog.New(slog.DiscardHandler))
		tr.expect("codex-bottle", snap)
		open(tr, 7)
		require.NoError(t, tr.onRequest(7, &discoveryv3.DiscoveryRequest{
			TypeUrl: resource.ListenerType, ResponseNonce: "n",
			ErrorDetail: &statuspb.Status{Message: "bad listener"},
		}))
		err := waitFor(tr)
		require.ErrorContains(t, err, "bad listener")
		require.ErrorContains(t, err, "Listener")
	})

	t.Run("requests from an unnamed stream are ignored", func(t *testing.T) {
		tr := newAckTracker(slog.New(slog.DiscardHandler))
		tr.expect("codex-bottle", snap)
		for _, typ := range allTypes {
			ack(tr, 9, typ, version)
		}
		require.Error(t, waitFor(tr))
	})
}
