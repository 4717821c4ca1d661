package slotwire

import (
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/egressgate/egressgate/config"
)

// slotPolicy has one slot per source kind; the kind is opaque to the
// encoding, so a kind config does not know yet ("file") travels too.
func slotPolicy() *config.Policy {
	exp := time.Date(2026, 3, 1, 12, 30, 0, 123456789, time.UTC)
	return &config.Policy{Name: "demo", Slots: []config.Slot{
		{Name: "EGRESS_TOKEN_0", Source: config.Source{Kind: config.SourceCodex, Ref: "/home/u/.codex/auth.json"}, Value: config.NewSecret("codex-secret"), Expiry: exp},
		{Name: "EGRESS_TOKEN_1", Source: config.Source{Kind: config.SourceEnv, Ref: "GITHUB_TOKEN"}, Value: config.NewSecret("env-secret")},
		{Name: "EGRESS_TOKEN_2", Source: config.Source{Kind: "file", Ref: "/run/tokens/gitlab"}},
		{Name: "EGRESS_TOKEN_3", Source: config.Source{Kind: config.SourceCodex, Ref: "/home/v/.codex/auth.json"}, Problem: "/home/v/.codex/auth.json: not found; run 'codex login --device-auth' on the host"},
	}}
}

func TestSlotSecretsRoundTrip(t *testing.T) {
	p := slotPolicy()
	res, err := SlotSecrets(p)
	require.NoError(t, err)
	require.Len(t, res, len(p.Slots))
	for i, r := range res {
		s := r.(*tlsv3.Secret)
		require.Equal(t, "slot/"+p.Slots[i].Name, s.GetName(), "slot order")
		got, err := DecodeSlotSecret(s)
		require.NoError(t, err)
		want := p.Slots[i]
		require.Equal(t, want.Name, got.Name)
		require.Equal(t, want.Source, got.Source)
		require.Equal(t, want.Value.Reveal(), got.Value.Reveal())
		require.True(t, want.Expiry.Equal(got.Expiry), "expiry %v, want %v", got.Expiry, want.Expiry)
		require.Equal(t, want.Expiry.IsZero(), got.Expiry.IsZero())
		require.Equal(t, want.Problem, got.Problem)
		require.Equal(t, want.LoggedOut(), got.LoggedOut())
	}
}

func TestSlotSecretsWire(t *testing.T) {
	res, err := SlotSecrets(slotPolicy())
	require.NoError(t, err)
	t.Run("present value with expiry", func(t *testing.T) {
		want := &tlsv3.Secret{Name: "slot/EGRESS_TOKEN_0", Type: generic(map[string]*corev3.DataSource{
			"value":       inlineBytes([]byte("codex-secret")),
			"source_kind": inlineString("codex"),
			"source_ref":  inlineString("/home/u/.codex/auth.json"),
			"expiry":      inlineString("2026-03-01T12:30:00.123456789Z"),
		})}
		require.Empty(t, cmp.Diff(want, res[0], protocmp.Transform()))
	})
	t.Run("empty slot has no value key and zero expiry no expiry key", func(t *testing.T) {
		want := &tlsv3.Secret{Name: "slot/EGRESS_TOKEN_2", Type: generic(map[string]*corev3.DataSource{
			"source_kind": inlineString("file"),
			"source_ref":  inlineString("/run/tokens/gitlab"),
		})}
		require.Empty(t, cmp.Diff(want, res[2], protocmp.Transform()))
	})
}

func TestSlotSecretsErrors(t *testing.T) {
	_, err := SlotSecrets(nil)
	require.Error(t, err)
	_, err = SlotSecrets(&config.Policy{Name: "demo", Slots: []config.Slot{{Value: config.NewSecret("unnamed-secret")}}})
	require.ErrorContains(t, err, "no name")
	require.NotContains(t, err.Error(), "unnamed-secret")

	res, err := SlotSecrets(&config.Policy{Name: "none"})
	require.NoError(t, err)
	require.Empty(t, res)
}

func TestDecodeSlotSecretRejects(t *testing.T) {
	valid := func() map[string]*corev3.DataSource {
		return map[string]*corev3.DataSource{
			"value":       inlineBytes([]byte("must-not-leak")),
			"source_kind": inlineString("env"),
			"source_ref":  inlineString("GITHUB_TOKEN"),
		}
	}
	without := func(key string) map[string]*corev3.DataSource {
		m := valid()
		delete(m, key)
		return m
	}
	with := func(key string, ds *corev3.DataSource) map[string]*corev3.DataSource {
		m := valid()
		m[key] = ds
		return m
	}
	for _, tt := range []struct {
		name   string
		secret *tlsv3.Secret
		want   string
	}{
		{"nil", nil, "not a slot secret"},
		{"name without prefix", &tlsv3.Secret{Name: "EGRESS_TOKEN_0", Type: generic(valid())}, "not a slot secret"},
		{"prefix only", &tlsv3.Secret{Name: "slot/", Type: generic(valid())}, "not a slot secret"},
		{"tls certificate", &tlsv3.Secret{Name: "slot/EGRESS_TOKEN_0", Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{}}}, "not a generic secret"},
		{"no type", &tlsv3.Secret{Name: "slot/EGRESS_TOKEN_0"}, "not a generic secret"},
		{"no source kind", &tlsv3.Secret{Name: "slot/EGRESS_TOKEN_0", Type: generic(without("source_kind"))}, "missing source_kind"},
		{"no source ref", &tlsv3.Secret{Name: "slot/EGRESS_TOKEN_0", Type: generic(without("source_ref"))}, "missing source_ref"},
		{"empty source kind", &tlsv3.Secret{Name: "slot/EGRESS_TOKEN_0", Type: generic(with("source_kind", inlineString("")))}, "empty source_kind"},
		{"value from a file", &tlsv3.Secret{Name: "slot/EGRESS_TOKEN_0", Type: generic(with("value", &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: "/etc/shadow"}}))}, "value: not inline"},
		{"bad expiry", &tlsv3.Secret{Name: "slot/EGRESS_TOKEN_0", Type: generic(with("expiry", inlineString("tomorrow")))}, "expiry"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeSlotSecret(tt.secret)
			require.ErrorContains(t, err, tt.want)
			require.NotContains(t, err.Error(), "must-not-leak")
		})
	}
}

func generic(fields map[string]*corev3.DataSource) *tlsv3.Secret_GenericSecret {
	return &tlsv3.Secret_GenericSecret{GenericSecret: &tlsv3.GenericSecret{Secrets: fields}}
}
