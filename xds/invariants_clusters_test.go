package xds

// TestInvariantUpstreamTLS, with the cases and index of invariants_test.go.

import (
	"net"
	"strconv"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/egressgate/egressgate/config"
)

// TestInvariantUpstreamTLS: every cluster that speaks TLS verifies its
// peer: a trusted CA, exactly one SAN matcher, exact and case-sensitive,
// equal to the SNI. Every other cluster is the MITM hand-off to an
// internal listener, a passthrough tunnel, or ext_proc.
func TestInvariantUpstreamTLS(t *testing.T) {
	for _, c := range invariantCases(t) {
		t.Run(c.name, func(t *testing.T) {
			for name, cl := range c.out.clusters {
				ts := cl.GetTransportSocket()
				switch {
				case name == extProcCluster:
					checkExtProcClusterTLS(t, c, cl)
				case ts.GetName() == "envoy.transport_sockets.internal_upstream":
					require.Contains(t, c.out.listeners, endpointAddress(t, cl).GetEnvoyInternalAddress().GetServerListenerName(),
						"%s: hands off to a listener not in the output", name)
				case ts == nil:
					checkTunnel(t, c, cl)
				default:
					checkUpstreamTLS(t, c, cl)
				}
			}
		})
	}
}

// checkUpstreamTLS: a TLS cluster reaches one intercepted host, verified
// as that host: SNI = host, SAN exact = host, the route's CA or the
// system roots.
func checkUpstreamTLS(t *testing.T, c invariantCase, cl *clusterv3.Cluster) {
	t.Helper()
	name := cl.GetName()
	require.Equal(t, "envoy.transport_sockets.tls", cl.GetTransportSocket().GetName(), name)
	ctx := &tlsv3.UpstreamTlsContext{}
	require.NoError(t, cl.GetTransportSocket().GetTypedConfig().UnmarshalTo(ctx), name)
	host := ctx.GetSni()
	r, ok := c.in.Policy.Route(host)
	require.True(t, ok && r.TLS == config.Intercept, "%s: SNI %q is no intercepted host of the policy", name, host)
	vc := ctx.GetCommonTlsContext().GetValidationContext()
	require.NotNil(t, vc, "%s: no inline validation context, so nothing verifies the upstream", name)
	want := &tlsv3.CertificateValidationContext{
		TrustedCa: &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: c.in.SystemCAFile}},
		MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{{
			SanType: tlsv3.SubjectAltNameMatcher_DNS,
			Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: host}},
		}},
	}
	if r.Upstream.CAPEM != nil {
		want.TrustedCa = &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: r.Upstream.CAPEM}}
	}
	require.NotEmpty(t, c.in.SystemCAFile)
	// The whole context: trust_chain_verification, allow_expired_certificate
	// or a custom validator set later would each weaken the check.
	if diff := cmp.Diff(want, vc, protocmp.Transform()); diff != "" {
		t.Errorf("%s: validation context (-want +got):\n%s", name, diff)
	}
}

// checkTunnel: a cluster without a transport socket carries a passthrough
// host's bytes to that host (or its upstream address), nothing else.
func checkTunnel(t *testing.T, c invariantCase, cl *clusterv3.Cluster) {
	t.Helper()
	host, ok := strings.CutPrefix(cl.GetName(), "passthrough/")
	require.True(t, ok, "%s: a plaintext cluster that is no passthrough tunnel", cl.GetName())
	r, found := c.in.Policy.Route(host)
	require.True(t, found && r.TLS == config.Passthrough, "%s: tunnel for a host the policy does not pass through", cl.GetName())
	want := r.Upstream.Address
	if want == "" {
		want = host + ":443"
	}
	sa := endpointAddress(t, cl).GetSocketAddress()
	require.Equal(t, want, net.JoinHostPort(sa.GetAddress(), strconv.FormatUint(uint64(sa.GetPortValue()), 10)), cl.GetName())
}

func checkExtProcClusterTLS(t *testing.T, c invariantCase, cl *clusterv3.Cluster) {
	t.Helper()
	if c.in.ExtProcTrustedCA == nil {
		require.Nil(t, cl.GetTransportSocket(), "ext_proc in process: plaintext on loopback")
		return
	}
	ctx := &tlsv3.UpstreamTlsContext{}
	require.NoError(t, cl.GetTransportSocket().GetTypedConfig().UnmarshalTo(ctx))
	vc := ctx.GetCommonTlsContext().GetValidationContext()
	require.Equal(t, c.in.ExtProcTrustedCA, vc.GetTrustedCa().GetInlineBytes())
	host, _, err := splitHostPort(c.in.ExtProcAddress)
	require.NoError(t, err)
	require.Len(t, vc.GetMatchTypedSubjectAltNames(), 1)
	require.Equal(t, host, vc.GetMatchTypedSubjectAltNames()[0].GetMatcher().GetExact())
}

func endpointAddress(t *testing.T, cl *clusterv3.Cluster) *corev3.Address {
	t.Helper()
	eps := cl.GetLoadAssignment().GetEndpoints()
	require.Len(t, eps, 1, cl.GetName())
	require.Len(t, eps[0].GetLbEndpoints(), 1, cl.GetName())
	return eps[0].GetLbEndpoints()[0].GetEndpoint().GetAddress()
}
