package slotsync

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/dlp"
	"github.com/egressgate/egressgate/slotwire"
	"github.com/egressgate/egressgate/xdsauth"
)

func TestRunFollowsSnapshots(t *testing.T) {
	cp := startControlPlane(t, "127.0.0.1:0")
	// A secret that is not a slot (a leaf certificate) shares the stream
	// and is ignored.
	leaf := &tlsv3.Secret{Name: "leaf/example.com", Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{}}}
	cp.setSlots(t, "v1", append(slotSecrets(t, "first-0", "", "first-2"), leaf)...)
	sc := startSidecar(t, cp.addr, "bottle-jwt")

	i := sc.waitValues(t, 0, "first-0", "", "first-2")
	_, slots := sc.slots.wait(t, i, "first slots", func([]config.Slot) bool { return true })
	require.Equal(t, []string{"EGRESS_TOKEN_0", "EGRESS_TOKEN_1", "EGRESS_TOKEN_2"}, names(slots), "slot order")
	require.False(t, slots[1].Present(), "an empty slot arrives empty")
	require.Equal(t, config.Source{Kind: config.SourceEnv, Ref: "TOKEN_EGRESS_TOKEN_1"}, slots[1].Source)

	t.Run("first request names the node and subscribes to every secret", func(t *testing.T) {
		_, first := cp.waitRequest(t, 0, "first request", func(*discoveryv3.DiscoveryRequest) bool { return true })
		require.Equal(t, resource.SecretType, first.GetTypeUrl())
		require.True(t, proto.Equal(&corev3.Node{Id: bottle, Cluster: xdsauth.ExtProcCluster}, first.GetNode()))
		require.Empty(t, first.GetResourceNames(), "wildcard")
		require.Empty(t, first.GetVersionInfo())
	})
	ack := cp.waitACK(t, 0, "v1")
	t.Run("token on the stream", func(t *testing.T) {
		auth, _ := cp.auth.snapshot()
		require.Equal(t, [][]string{{"Bearer bottle-jwt"}}, auth)
	})

	cp.setSlots(t, "v2", slotSecrets(t, "rotated-0", "now-set-1", "first-2")...)
	sc.waitValues(t, i+1, "rotated-0", "now-set-1", "first-2")
	cp.waitACK(t, ack+1, "v2")
	require.NotContains(t, sc.logs.String(), "first-0", "slot values are never logged")
	require.NotContains(t, sc.logs.String(), "rotated-0", "slot values are never logged")
}

func TestRunWithoutToken(t *testing.T) {
	cp := startControlPlane(t, "127.0.0.1:0")
	cp.setSlots(t, "v1", slotSecrets(t, "value-0")...)
	sc := startSidecar(t, cp.addr, "")
	sc.waitValues(t, 0, "value-0")
	_, md := cp.auth.wait(t, 0, "a stream", func([]string) bool { return true })
	require.Empty(t, md, "no authorization metadata without a token")
}

func TestRunEmptySlotSet(t *testing.T) {
	// A bottle with no credentialed route has no slots; its first, empty,
	// set still arrives, so the sidecar can report ready.
	cp := startControlPlane(t, "127.0.0.1:0")
	cp.setSlots(t, "v1")
	sc := startSidecar(t, cp.addr, "")
	_, slots := sc.slots.wait(t, 0, "the empty slot set", func([]config.Slot) bool { return true })
	require.Empty(t, slots)
}

func TestRunReconnectsAndKeepsSlots(t *testing.T) {
	cp := startControlPlane(t, "127.0.0.1:0")
	cp.setSlots(t, "v1", slotSecrets(t, "before-restart")...)
	sc := startSidecar(t, cp.addr, "bottle-jwt")
	sc.waitValues(t, 0, "before-restart")
	cp.waitACK(t, 0, "v1")
	calls := sc.slots.len()

	// The control plane restarts on the same address with an empty cache.
	cp.stop()
	cp = startControlPlane(t, cp.addr)
	_, hello := cp.waitRequest(t, 0, "the reconnected stream", func(r *discoveryv3.DiscoveryRequest) bool { return r.GetNode() != nil })
	require.Equal(t, "v1", hello.GetVersionInfo(), "a new stream resumes from the accepted version")
	require.Equal(t, calls, sc.slots.len(), "a dropped stream leaves the slots as they were")
	_, md := cp.auth.wait(t, 0, "the reconnected stream's token", func([]string) bool { return true })
	require.Equal(t, []string{"Bearer bottle-jwt"}, md, "token sent on every stream")

	cp.setSlots(t, "v2", slotSecrets(t, "after-restart")...)
	i := sc.waitValues(t, calls, "after-restart")
	require.Equal(t, calls, i, "nothing in between, in particular no empty set")
}

// Restarts in quick succession must not push the reconnect delay up: each
// stream that delivered slots was healthy, so its end is a first failure.
func TestRunRetriesAtOnceAfterEachHealthyStream(t *testing.T) {
	cp := startControlPlane(t, "127.0.0.1:0")
	sc := startSidecar(t, cp.addr, "bottle-jwt")
	from := 0
	for i := range 4 {
		version := fmt.Sprintf("v%d", i)
		cp.setSlots(t, version, slotSecrets(t, version)...)
		from = sc.waitValues(t, from, version) + 1
		cp.stop()
		cp = startControlPlane(t, cp.addr)
	}
	cp.setSlots(t, "last", slotSecrets(t, "last")...)
	sc.waitValues(t, from, "last")
	logs := sc.logs.String()
	require.Equal(t, 4, strings.Count(logs, "slot stream ended"), logs)
	require.Equal(t, 4, strings.Count(logs, "retry_in=10ms"), "every retry after a healthy stream waits the first delay:\n%s", logs)
}

func TestRunNACKsMalformedSlotsAndKeepsPrevious(t *testing.T) {
	cp := startControlPlane(t, "127.0.0.1:0")
	cp.setSlots(t, "v1", slotSecrets(t, "good-0")...)
	sc := startSidecar(t, cp.addr, "")
	sc.waitValues(t, 0, "good-0")
	ack := cp.waitACK(t, 0, "v1")
	calls := sc.slots.len()

	// A slot secret with no source: the whole response is refused.
	bad := &tlsv3.Secret{Name: "slot/EGRESS_TOKEN_0", Type: &tlsv3.Secret_GenericSecret{GenericSecret: &tlsv3.GenericSecret{
		Secrets: map[string]*corev3.DataSource{"value": {Specifier: &corev3.DataSource_InlineBytes{InlineBytes: []byte("bad-0")}}},
	}}}
	cp.setSlots(t, "v2", append(slotSecrets(t, "", "good-1"), bad)...)
	_, nack := cp.waitRequest(t, ack+1, "a NACK", func(r *discoveryv3.DiscoveryRequest) bool { return r.GetErrorDetail() != nil })
	require.Contains(t, nack.GetErrorDetail().GetMessage(), "EGRESS_TOKEN_0")
	require.NotContains(t, nack.GetErrorDetail().GetMessage(), "bad-0")
	require.Equal(t, "v1", nack.GetVersionInfo(), "a NACK names the last accepted version")
	require.NotEmpty(t, nack.GetResponseNonce())
	require.Equal(t, calls, sc.slots.len(), "the previous slots stay")

	cp.setSlots(t, "v3", slotSecrets(t, "fixed-0")...)
	i := sc.waitValues(t, calls, "fixed-0")
	require.Equal(t, calls, i, "nothing from the rejected version was applied")
	require.NotContains(t, sc.logs.String(), "bad-0")
}

func TestRunValidatesOptions(t *testing.T) {
	var conn grpc.ClientConnInterface // never used: Run refuses first
	for _, tt := range []struct {
		name string
		opts Options
	}{
		{"no node", Options{OnSlots: func([]config.Slot) {}}},
		{"no node id", Options{Node: &corev3.Node{Cluster: xdsauth.ExtProcCluster}, OnSlots: func([]config.Slot) {}}},
		{"no OnSlots", Options{Node: &corev3.Node{Id: bottle}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			require.Error(t, Run(context.Background(), conn, tt.opts))
		})
	}
}

// waitACK waits for an ACK of version at or after request from and returns
// its index.
func (cp *controlPlane) waitACK(t *testing.T, from int, version string) int {
	t.Helper()
	i, _ := cp.waitRequest(t, from, "ACK of "+version, func(r *discoveryv3.DiscoveryRequest) bool {
		return r.GetErrorDetail() == nil && r.GetVersionInfo() == version && r.GetResponseNonce() != ""
	})
	return i
}

func names(slots []config.Slot) []string {
	out := make([]string, len(slots))
	for i, sl := range slots {
		out[i] = sl.Name
	}
	return out
}

// TestRunDeliversDLPInputs: the rules and canaries of each accepted
// response reach OnDLP, empty ones when a response carries none (the
// canary file was emptied); their values are never logged.
func TestRunDeliversDLPInputs(t *testing.T) {
	const canaryValue = "ghp_canary-value-never-logged-0001"
	rules := config.DLPRules{Allow: []string{"0123456789ab"}}
	dlpSecrets, err := slotwire.DLPSecrets(rules, []dlp.Named{{Name: "github-token@9f2c4e1a", Value: config.NewSecret(canaryValue)}})
	require.NoError(t, err)
	cp := startControlPlane(t, "127.0.0.1:0")
	cp.setSlots(t, "v1", append(slotSecrets(t, "value-0"), dlpSecrets...)...)
	sc := startSidecar(t, cp.addr, "")

	i, got := sc.dlp.wait(t, 0, "the canaries", func(in slotwire.DLPInputs) bool { return len(in.Canaries) == 1 })
	require.Equal(t, rules, got.Rules)
	require.Equal(t, "github-token@9f2c4e1a", got.Canaries[0].Name)
	require.True(t, got.Canaries[0].Value.Reveal() == canaryValue, "the canary's value arrives")
	sc.waitValues(t, 0, "value-0")
	cp.waitACK(t, 0, "v1")

	cp.setSlots(t, "v2", slotSecrets(t, "value-0")...)
	_, got = sc.dlp.wait(t, i+1, "no canaries", func(in slotwire.DLPInputs) bool { return len(in.Canaries) == 0 })
	require.Empty(t, got.Rules, "rules no longer sent are gone")
	require.False(t, strings.Contains(sc.logs.String(), canaryValue), "canary values are never logged")
	require.Contains(t, sc.logs.String(), "canaries=1")
}
