package slotsync

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/dlp"
	"github.com/egressgate/egressgate/slotwire"
)

func response(t *testing.T, version string, secrets ...types.Resource) *discoveryv3.DiscoveryResponse {
	t.Helper()
	resp := &discoveryv3.DiscoveryResponse{TypeUrl: resource.SecretType, VersionInfo: version, Nonce: "nonce-" + version}
	for _, s := range secrets {
		a, err := anypb.New(s)
		require.NoError(t, err)
		resp.Resources = append(resp.Resources, a)
	}
	return resp
}

func TestDecodeSlots(t *testing.T) {
	t.Run("slot order, not text order, whatever the wire order", func(t *testing.T) {
		values := make([]string, 12)
		for i := range values {
			values[i] = "value-" + config.SlotName(i)
		}
		secrets := slotSecrets(t, values...)
		rand.Shuffle(len(secrets), func(i, j int) { secrets[i], secrets[j] = secrets[j], secrets[i] })
		u, err := decodeSlots(response(t, "v1", secrets...))
		require.NoError(t, err)
		require.Nil(t, u.cert, "no certificate sent")
		require.Empty(t, u.dlp, "no DLP inputs sent")
		slots := u.slots
		require.Len(t, slots, 12)
		for i, sl := range slots {
			require.Equal(t, config.SlotName(i), sl.Name)
			require.Equal(t, values[i], sl.Value.Reveal())
		}
	})
	t.Run("other secrets are not slots", func(t *testing.T) {
		leaf := &tlsv3.Secret{Name: "leaf/example.com", Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{}}}
		u, err := decodeSlots(response(t, "v1", append(slotSecrets(t, "only"), leaf)...))
		require.NoError(t, err)
		require.Equal(t, []string{"only"}, values(u.slots))
	})
	t.Run("the ext_proc server's certificate", func(t *testing.T) {
		snap, err := slotwire.SlotSnapshot(&config.Policy{Name: "b"}, &slotwire.Certificate{CertPEM: []byte("cert"), KeyPEM: []byte("key")}, nil)
		require.NoError(t, err)
		var secrets []types.Resource
		for _, r := range snap.GetResources(resource.SecretType) {
			secrets = append(secrets, r)
		}
		u, err := decodeSlots(response(t, "v1", secrets...))
		require.NoError(t, err)
		require.Empty(t, u.slots)
		require.Equal(t, &slotwire.Certificate{CertPEM: []byte("cert"), KeyPEM: []byte("key")}, u.cert)

		empty := &tlsv3.Secret{Name: slotwire.ExtProcServerCertSecret, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{}}}
		_, err = decodeSlots(response(t, "v1", empty))
		require.ErrorContains(t, err, "no inline certificate")
	})
	t.Run("a slot sent twice is refused", func(t *testing.T) {
		s := slotSecrets(t, "twice")
		_, err := decodeSlots(response(t, "v1", s[0], s[0]))
		require.ErrorContains(t, err, "EGRESS_TOKEN_0 sent twice")
	})
	t.Run("a resource that is not a secret is refused", func(t *testing.T) {
		_, err := decodeSlots(response(t, "v1", durationpb.New(time.Second)))
		require.ErrorContains(t, err, "resource 0")
	})
	t.Run("the DLP rules and canaries", func(t *testing.T) {
		p := &config.Policy{Name: "b", DLPRules: config.DLPRules{Patterns: []config.DLPPattern{{Name: "codename", Literal: "BLUE-HARVEST-7"}}}}
		canaries := []dlp.Named{{Name: "github-token@9f2c4e1a", Value: config.NewSecret("ghp_canary-value-0001")}}
		snap, err := slotwire.SlotSnapshot(p, nil, canaries)
		require.NoError(t, err)
		var secrets []types.Resource
		for _, r := range snap.GetResources(resource.SecretType) {
			secrets = append(secrets, r)
		}
		u, err := decodeSlots(response(t, "v1", append(secrets, slotSecrets(t, "slot")...)...))
		require.NoError(t, err)
		require.Equal(t, []string{"slot"}, values(u.slots))
		require.Equal(t, p.DLPRules, u.dlp.Rules)
		require.Len(t, u.dlp.Canaries, 1)
		require.Equal(t, "github-token@9f2c4e1a", u.dlp.Canaries[0].Name)
		require.True(t, u.dlp.Canaries[0].Value.Reveal() == "ghp_canary-value-0001", "the canary's value arrives")

		bad := &tlsv3.Secret{Name: slotwire.CanariesSecret}
		_, err = decodeSlots(response(t, "v1", append(slotSecrets(t, "slot"), bad)...))
		require.ErrorContains(t, err, "dlp/canaries: not a generic secret", "a bad DLP secret rejects the whole response")
	})
}

func TestHandlePacesRepeatedNACKs(t *testing.T) {
	const step = 20 * time.Millisecond
	c := &client{opts: Options{OnSlots: func([]config.Slot) {}}, nack: backoff{initial: step, max: maxNACKPacing}}
	c.opts.setDefaults()
	bad := response(t, "v2", &tlsv3.Secret{Name: "slot/EGRESS_TOKEN_0"})

	start := time.Now()
	for range 3 {
		req := c.handle(context.Background(), bad)
		require.NotNil(t, req.GetErrorDetail())
		require.Equal(t, "nonce-v2", req.GetResponseNonce())
	}
	// The first NACK of v2 is immediate; the two resends wait step, 2*step.
	require.GreaterOrEqual(t, time.Since(start), 3*step)

	ack := c.handle(context.Background(), response(t, "v3", slotSecrets(t, "good")...))
	require.Nil(t, ack.GetErrorDetail())
	require.Equal(t, "v3", ack.GetVersionInfo())
	require.Equal(t, time.Duration(0), c.nack.next, "an accepted response resets the pacing")
}

func TestBackoff(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	steps := func(b *backoff) []time.Duration {
		var got []time.Duration
		for range 8 {
			got = append(got, b.step())
		}
		return got
	}
	reconnect := backoff{initial: 100 * time.Millisecond, max: maxReconnect}
	require.Equal(t, []time.Duration{ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000), ms(1000), ms(1000)}, steps(&reconnect),
		"a returning control plane is noticed within a second")
	reconnect.reset()
	require.Equal(t, ms(100), reconnect.step())

	nack := backoff{initial: 100 * time.Millisecond, max: maxNACKPacing}
	require.Equal(t, []time.Duration{ms(100), ms(200), ms(400), ms(800), ms(1600), ms(3200), ms(5000), ms(5000)}, steps(&nack))
}
