package slotwire

import (
	"reflect"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/dlp"
)

func testRules() config.DLPRules {
	return config.DLPRules{
		Patterns: []config.DLPPattern{
			{Name: "project-codename", Literal: "BLUE-HARVEST-7"},
			{Name: "internal-ticket", Regex: `INT-[0-9]{6}`},
		},
		Allow: []string{"0123456789ab"},
	}
}

func testCanaries() []dlp.Named {
	return []dlp.Named{
		{Name: "github-token@9f2c4e1a", Value: config.NewSecret("ghp_canaryvalue-github-0001")},
		{Name: "aws-access-key-id@9f2c4e1a", Value: config.NewSecret("AKIACANARYVALUE00001")},
	}
}

// TestSlotSnapshotDLPRoundTrip: the sidecar decodes exactly the rules and
// canaries control encoded, alongside the slots and the certificate.
func TestSlotSnapshotDLPRoundTrip(t *testing.T) {
	p := slotPolicy()
	p.DLPRules = testRules()
	cert := &Certificate{CertPEM: []byte("cert"), KeyPEM: []byte("key")}
	snap, err := SlotSnapshot(p, cert, testCanaries())
	require.NoError(t, err)
	secrets := snap.GetResources(resource.SecretType)
	require.Len(t, secrets, len(p.Slots)+3, "every slot, the certificate, the rules and the canaries")

	var in DLPInputs
	var slots int
	for _, r := range secrets {
		s := r.(*tlsv3.Secret)
		ok, err := DecodeDLPSecret(s, &in)
		require.NoError(t, err)
		if ok {
			continue
		}
		if _, err := DecodeSlotSecret(s); err == nil {
			slots++
		}
	}
	require.Equal(t, len(p.Slots), slots, "the slots still decode as slots")
	require.Equal(t, testRules(), in.Rules)
	want := testCanaries()
	require.Equal(t, []string{want[1].Name, want[0].Name}, canaryNames(in.Canaries), "sorted by name")
	require.True(t, in.Canaries[0].Value.Reveal() == want[1].Value.Reveal() && in.Canaries[1].Value.Reveal() == want[0].Value.Reveal(), "canary values round-trip")

	noDLP, err := SlotSnapshot(slotPolicy(), cert, nil)
	require.NoError(t, err)
	require.Len(t, noDLP.GetResources(resource.SecretType), len(p.Slots)+1, "no DLP inputs, no DLP secrets")
	canaryOnly, err := SlotSnapshot(slotPolicy(), cert, testCanaries())
	require.NoError(t, err)
	require.NotEqual(t, noDLP.GetVersion(resource.SecretType), canaryOnly.GetVersion(resource.SecretType), "new canaries are a new version")
	again, err := SlotSnapshot(slotPolicy(), cert, testCanaries())
	require.NoError(t, err)
	require.Equal(t, canaryOnly.GetVersion(resource.SecretType), again.GetVersion(resource.SecretType))
}

func TestDLPSecretsWire(t *testing.T) {
	res, err := DLPSecrets(testRules(), testCanaries())
	require.NoError(t, err)
	require.Len(t, res, 2)
	rules := &tlsv3.Secret{Name: "dlp/rules", Type: generic(map[string]*corev3.DataSource{
		"rules": inlineBytes([]byte(`{"patterns":[{"name":"project-codename","literal":"BLUE-HARVEST-7"},{"name":"internal-ticket","regex":"INT-[0-9]{6}"}],"allow":["0123456789ab"]}`)),
	})}
	require.Empty(t, cmp.Diff(rules, res[0], protocmp.Transform()))
	canaries := &tlsv3.Secret{Name: "dlp/canaries", Type: generic(map[string]*corev3.DataSource{
		"github-token@9f2c4e1a":      inlineBytes([]byte("ghp_canaryvalue-github-0001")),
		"aws-access-key-id@9f2c4e1a": inlineBytes([]byte("AKIACANARYVALUE00001")),
	})}
	require.Empty(t, cmp.Diff(canaries, res[1], protocmp.Transform()))

	none, err := DLPSecrets(config.DLPRules{}, nil)
	require.NoError(t, err)
	require.Empty(t, none)
}

// TestRulesWireCoversConfig fails when config.DLPRules or DLPPattern gain
// a field the wire does not carry: the sidecar would silently lose it.
func TestRulesWireCoversConfig(t *testing.T) {
	require.Equal(t, []string{"Patterns", "Allow"}, fieldNames(reflect.TypeFor[config.DLPRules]()), "add the new field to rulesWire, its encoding and decoding")
	require.Equal(t, fieldNames(reflect.TypeFor[patternWire]()), fieldNames(reflect.TypeFor[config.DLPPattern]()), "add the new field to patternWire, its encoding and decoding")
}

func TestDLPSecretsRefuse(t *testing.T) {
	const value = "must-not-leak-canary"
	for _, tt := range []struct {
		name     string
		canaries []dlp.Named
		want     string
	}{
		{"no name", []dlp.Named{{Value: config.NewSecret(value)}}, "canary with no name"},
		{"no value", []dlp.Named{{Name: "github-token@1"}}, "github-token@1 has no value"},
		{"twice", []dlp.Named{{Name: "a", Value: config.NewSecret(value)}, {Name: "a", Value: config.NewSecret(value + "2")}}, "canary a given twice"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DLPSecrets(config.DLPRules{}, tt.canaries)
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.want)
			require.False(t, strings.Contains(err.Error(), value), "the error quotes a value")
		})
	}
}

func TestDecodeDLPSecretRejects(t *testing.T) {
	const value = "must-not-leak-canary"
	for _, tt := range []struct {
		name   string
		secret *tlsv3.Secret
		want   string
	}{
		{"rules not JSON", &tlsv3.Secret{Name: DLPRulesSecret, Type: generic(map[string]*corev3.DataSource{"rules": inlineString(`{"patterns":[` + value)})}, "not the rules' JSON"},
		{"rules missing", &tlsv3.Secret{Name: DLPRulesSecret, Type: generic(map[string]*corev3.DataSource{})}, "missing rules"},
		{"rules not generic", &tlsv3.Secret{Name: DLPRulesSecret}, "not a generic secret"},
		{"canary from a file", &tlsv3.Secret{Name: CanariesSecret, Type: generic(map[string]*corev3.DataSource{"github-token@1": {Specifier: &corev3.DataSource_Filename{Filename: "/etc/shadow"}}})}, "github-token@1: not inline"},
		{"canary empty", &tlsv3.Secret{Name: CanariesSecret, Type: generic(map[string]*corev3.DataSource{"github-token@1": inlineString("")})}, "no name or no value"},
		{"canaries not generic", &tlsv3.Secret{Name: CanariesSecret}, "not a generic secret"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var in DLPInputs
			ok, err := DecodeDLPSecret(tt.secret, &in)
			require.True(t, ok)
			require.ErrorContains(t, err, tt.want)
			require.False(t, strings.Contains(err.Error(), value), "the error quotes a value")
		})
	}
	var in DLPInputs
	ok, err := DecodeDLPSecret(&tlsv3.Secret{Name: "slot/EGRESS_TOKEN_0"}, &in)
	require.NoError(t, err)
	require.False(t, ok, "a slot is no DLP secret")
}

func canaryNames(ns []dlp.Named) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.Name
	}
	return out
}

func fieldNames(t reflect.Type) []string {
	out := make([]string, t.NumField())
	for i := range out {
		out[i] = t.Field(i).Name
	}
	return out
}
