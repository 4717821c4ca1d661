package xds

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/config"
)

// errorsSlotValue is the credential of errorsInput's slot. No Translate
// error may quote it.
const errorsSlotValue = "errors-slot-value-must-not-leak"

// errorsInput is a valid Input with one credentialed intercepted host
// (a.test) and one passthrough host (p.test); each case breaks one thing.
func errorsInput() Input {
	p := &config.Policy{
		Name: "errs",
		Slots: []config.Slot{{Name: "EGRESS_TOKEN_0", Source: config.Source{Kind: config.SourceEnv, Ref: "A_TOKEN"},
			Value: config.NewSecret(errorsSlotValue)}},
		Routes: []config.Route{
			{Host: "a.test", TLS: config.Intercept, Auth: &config.Auth{Scheme: "Bearer", Slot: "EGRESS_TOKEN_0"}},
			{Host: "p.test", TLS: config.Passthrough},
		},
	}
	return Input{
		Policy:         p,
		Leaves:         map[string]Certificate{"a.test": {CertPEM: []byte("CERT a.test"), KeyPEM: []byte("KEY a.test")}},
		ProxyAddress:   "127.0.0.1:3128",
		ExtProcAddress: "127.0.0.1:9001",
		ExtProcKey:     config.NewSecret("caller-key"),
		SystemCAFile:   "/etc/ssl/certs/ca-certificates.crt",
	}
}

// TestTranslateErrors: an input Translate cannot turn into a working
// Envoy config fails with an error naming the bottle and what is wrong
// (the resource, host or address), rather than reaching Envoy as a NACK.
func TestTranslateErrors(t *testing.T) {
	_, err := Translate(errorsInput())
	require.NoError(t, err, "the base input must be valid, or every case passes for the wrong reason")

	for _, tc := range []struct {
		name   string
		mutate func(in *Input)
		// want are substrings the error must hold, in any order.
		want []string
	}{
		{"nil policy", func(in *Input) { in.Policy = nil }, []string{"nil policy"}},
		{"proxy address without a port", func(in *Input) { in.ProxyAddress = "127.0.0.1" },
			[]string{"bottle errs", "proxy listener", `"127.0.0.1"`}},
		{"proxy port zero", func(in *Input) { in.ProxyAddress = "127.0.0.1:0" },
			[]string{"proxy listener", "bad port"}},
		{"proxy port not a number", func(in *Input) { in.ProxyAddress = "127.0.0.1:proxy" },
			[]string{"proxy listener", "bad port"}},
		{"proxy address without a host", func(in *Input) { in.ProxyAddress = ":3128" },
			[]string{`Listener "proxy"`, "SocketAddress.Address"}},
		{"missing leaf certificate", func(in *Input) { delete(in.Leaves, "a.test") },
			[]string{"no certificate for intercepted host a.test"}},
		{"leaf without its key", func(in *Input) {
			in.Leaves["a.test"] = Certificate{CertPEM: []byte("CERT a.test")}
		}, []string{"no certificate for intercepted host a.test"}},
		{"no ext_proc caller key", func(in *Input) { in.ExtProcKey = config.Secret{} }, []string{"no ext_proc caller key"}},
		{"bad ext_proc address", func(in *Input) { in.ExtProcAddress = "extproc" },
			[]string{"ext_proc cluster", `"extproc"`}},
		{"empty ext_proc socket path", func(in *Input) { in.ExtProcAddress = UnixPrefix },
			[]string{"ext_proc cluster", "empty socket path"}},
		{"route names an unknown slot", func(in *Input) {
			in.Policy.Routes[0].Auth.Slot = "EGRESS_TOKEN_7"
		}, []string{"route a.test", "unknown slot EGRESS_TOKEN_7"}},
		{"answer names an unknown slot", func(in *Input) {
			in.Policy.Routes[0].Matches = []config.Match{{
				Paths:  []config.PathMatch{{Type: config.PathExact, Value: "/oauth/token"}},
				Answer: &config.Answer{Kind: config.AnswerCodexRefresh, Slot: "EGRESS_TOKEN_3"},
			}}
		}, []string{"route a.test", "answer codex-refresh", `unknown slot "EGRESS_TOKEN_3"`}},
		{"intercepted upstream address without a port", func(in *Input) {
			in.Policy.Routes[0].Upstream.Address = "10.0.0.1"
		}, []string{"route a.test", `"10.0.0.1"`}},
		{"passthrough upstream address with a bad port", func(in *Input) {
			in.Policy.Routes[1].Upstream.Address = "10.0.0.1:99999"
		}, []string{"route p.test", "bad port"}},
		// Every problem is reported in one run, not just the first.
		{"several problems", func(in *Input) {
			in.ProxyAddress = "nope"
			delete(in.Leaves, "a.test")
			in.ExtProcKey = config.Secret{}
		}, []string{"proxy listener", "no certificate for intercepted host a.test", "no ext_proc caller key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := errorsInput()
			tc.mutate(&in)
			res, err := Translate(in)
			require.Error(t, err)
			require.Nil(t, res, "a failed translation must hand back nothing to serve")
			// First, and not require.NotContains: a failure here or below
			// would print the error, value and all.
			if strings.Contains(err.Error(), errorsSlotValue) {
				t.Fatal("the error quotes the slot's value")
			}
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

// TestTranslatePassthroughOnlyNeedsNoExtProc: the caller key is required
// only when some host is intercepted; a bottle of tunnels has no ext_proc
// filter to present it.
func TestTranslatePassthroughOnlyNeedsNoExtProc(t *testing.T) {
	in := errorsInput()
	in.Policy.Routes = in.Policy.Routes[1:]
	in.Policy.Slots = nil
	in.ExtProcKey, in.ExtProcAddress, in.Leaves = config.Secret{}, "", nil
	res, err := Translate(in)
	require.NoError(t, err)
	for _, c := range res.Clusters {
		require.NotEqual(t, extProcCluster, c.(interface{ GetName() string }).GetName())
	}
}
