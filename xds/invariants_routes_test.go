package xds

// TestInvariantRouteBindings, with the cases and index of invariants_test.go.

import (
	"fmt"
	"strings"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/extprocapi"
)

// TestInvariantRouteBindings: on every route configuration served with
// ext_proc, a route that answers locally disables ext_proc (a refusal
// must not depend on it, nor reach it), and a route that forwards goes to
// a cluster verified as its own host and carries exactly its own host's
// binding: the host, the bottle's strip list (authorization and
// proxy-authorization always among it, invariant 1), and the slot,
// source and scheme or header of that host's route, or of its answer
// (invariant 2). Per-route overrides carry nothing else: a processing
// mode or failure_mode_allow override there would undo the filter's.
func TestInvariantRouteBindings(t *testing.T) {
	for _, c := range invariantCases(t) {
		t.Run(c.name, func(t *testing.T) {
			served := servedWithExtProc(t, c)
			for name, rc := range c.out.routes {
				host, withExtProc := served[name]
				for _, vh := range rc.GetVirtualHosts() {
					for _, r := range vh.GetRoutes() {
						switch {
						case r.GetDirectResponse() != nil && withExtProc:
							checkDisabled(t, r)
						case r.GetDirectResponse() != nil:
							// No ext_proc on this chain to disable.
						case r.GetRoute() != nil && withExtProc:
							checkForwarding(t, c, host, vh, r)
						case r.GetRoute() != nil:
							checkConnect(t, c, vh, r)
						default:
							t.Errorf("route %s of %s neither forwards nor answers", r.GetName(), name)
						}
					}
				}
			}
		})
	}
}

// servedWithExtProc maps each route configuration served by a connection
// manager with ext_proc to the host of the filter chain serving it; each
// is served by one chain only.
func servedWithExtProc(t *testing.T, c invariantCase) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, l := range c.out.listeners {
		for _, chain := range l.GetFilterChains() {
			hcm := hcmOf(t, chain)
			if extProcOf(t, hcm) == nil {
				continue
			}
			rds := hcm.GetRds().GetRouteConfigName()
			require.NotContains(t, out, rds, "route configuration %s served by two chains", rds)
			names := chain.GetFilterChainMatch().GetServerNames()
			require.Len(t, names, 1, "chain %s", chain.GetName())
			out[rds] = names[0]
		}
	}
	return out
}

func checkDisabled(t *testing.T, r *routev3.Route) {
	t.Helper()
	got := &extprocv3.ExtProcPerRoute{}
	require.NoError(t, r.GetTypedPerFilterConfig()[extProcFilterName].UnmarshalTo(got), "refusal %s: ext_proc per-route config", r.GetName())
	want := &extprocv3.ExtProcPerRoute{Override: &extprocv3.ExtProcPerRoute_Disabled{Disabled: true}}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("refusal %s must disable ext_proc (-want +got):\n%s", r.GetName(), diff)
	}
}

func checkForwarding(t *testing.T, c invariantCase, host string, vh *routev3.VirtualHost, r *routev3.Route) {
	t.Helper()
	name := r.GetName()
	for _, d := range vh.GetDomains() {
		require.Contains(t, []string{host, host + ":443"}, d, "route %s forwards for a domain of another host", name)
	}
	checkClusterIsHost(t, c, host, r)
	got := &extprocv3.ExtProcPerRoute{}
	require.NoError(t, r.GetTypedPerFilterConfig()[extProcFilterName].UnmarshalTo(got), "route %s: ext_proc per-route config", name)
	md := map[string]string{}
	for _, hv := range got.GetOverrides().GetGrpcInitialMetadata() {
		require.NotContains(t, md, hv.GetKey(), "route %s: metadata %s twice", name, hv.GetKey())
		md[hv.GetKey()] = hv.GetValue()
	}
	strip := strings.Split(md[extprocapi.MetadataStrip], ",")
	require.Subset(t, strip, []string{"authorization", "proxy-authorization"}, "route %s: strip list", name)
	if diff := cmp.Diff(wantBinding(t, c.in.Policy, host, r), md); diff != "" {
		t.Errorf("route %s: binding (-want +got):\n%s", name, diff)
	}
	got.GetOverrides().GrpcInitialMetadata = nil
	want := &extprocv3.ExtProcPerRoute{Override: &extprocv3.ExtProcPerRoute_Overrides{Overrides: &extprocv3.ExtProcOverrides{}}}
	pr, _ := c.in.Policy.Route(host)
	if pr.DLP.Enabled() && strings.Contains(name, "/ws/") {
		// A WebSocket's frames never end the request: they are streamed
		// to ext_proc, not buffered.
		want.GetOverrides().ProcessingMode = &extprocv3.ProcessingMode{
			RequestHeaderMode: extprocv3.ProcessingMode_SEND, ResponseHeaderMode: extprocv3.ProcessingMode_SKIP,
			RequestBodyMode: extprocv3.ProcessingMode_STREAMED, RequestTrailerMode: extprocv3.ProcessingMode_SEND,
			ResponseTrailerMode: extprocv3.ProcessingMode_SKIP,
		}
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("route %s: per-route ext_proc overrides more than metadata (-want +got):\n%s", name, diff)
	}
	// The body Envoy buffers for the scan is the route's limit, not the
	// listener's 1 MiB.
	wantLimit := uint64(0)
	if pr.DLP.Enabled() {
		wantLimit = uint64(pr.DLP.MaxBody)
	}
	require.Equal(t, wantLimit, vh.GetRequestBodyBufferLimit().GetValue(), "route %s: request body buffer limit", name)
}

// wantBinding is the metadata a forwarding route of host must carry,
// from the policy: the answer's, if the route is an answered match
// (exact path and methods of one of host's answers), else the route's.
func wantBinding(t *testing.T, p *config.Policy, host string, r *routev3.Route) map[string]string {
	t.Helper()
	pr, ok := p.Route(host)
	require.True(t, ok, "no policy route for %s", host)
	want := map[string]string{extprocapi.MetadataHost: host, extprocapi.MetadataStrip: strings.Join(p.StripHeaders(), ",")}
	if pr.DLP.Enabled() {
		want[extprocapi.MetadataDLP], want[extprocapi.MetadataDLPLarge] = string(pr.DLP.Mode), string(pr.DLP.LargeBody)
		want[extprocapi.MetadataDLPMax] = fmt.Sprint(pr.DLP.MaxBody)
	}
	if a := answerOf(pr, r); a != nil {
		slot, ok := p.Slot(a.Slot)
		require.True(t, ok)
		want[extprocapi.MetadataAnswer], want[extprocapi.MetadataSlot], want[extprocapi.MetadataSource] = a.Kind, a.Slot, slot.Source.String()
		return want
	}
	if pr.Auth == nil {
		return want
	}
	slot, ok := p.Slot(pr.Auth.Slot)
	require.True(t, ok)
	want[extprocapi.MetadataSlot], want[extprocapi.MetadataSource] = pr.Auth.Slot, slot.Source.String()
	if pr.Auth.Header != "" {
		want[extprocapi.MetadataHeader] = pr.Auth.Header
	} else {
		want[extprocapi.MetadataScheme] = pr.Auth.Scheme
	}
	return want
}

// answerOf is the answer of pr whose exact path r matches, if any.
func answerOf(pr config.Route, r *routev3.Route) *config.Answer {
	for _, m := range pr.Matches {
		if m.Answer == nil {
			continue
		}
		for _, pm := range m.Paths {
			if pm.Type == config.PathExact && r.GetMatch().GetPath() == pm.Value {
				return m.Answer
			}
		}
	}
	return nil
}

// checkClusterIsHost: the cluster a route forwards to is a TLS cluster
// verified as host, so a credential bound to host goes nowhere else.
func checkClusterIsHost(t *testing.T, c invariantCase, host string, r *routev3.Route) {
	t.Helper()
	cl := c.out.clusters[r.GetRoute().GetCluster()]
	require.NotNil(t, cl, "route %s forwards to no cluster of the output (cluster_header and weighted clusters are refused too)", r.GetName())
	ctx := &tlsv3.UpstreamTlsContext{}
	require.NoError(t, cl.GetTransportSocket().GetTypedConfig().UnmarshalTo(ctx), "route %s: cluster %s without TLS", r.GetName(), cl.GetName())
	require.Equal(t, host, ctx.GetSni(), "route %s of %s forwards to %s", r.GetName(), host, cl.GetName())
}

// checkConnect: on the proxy's route configuration, a CONNECT for
// host:443 goes to that host's MITM listener, or its tunnel, only.
func checkConnect(t *testing.T, c invariantCase, vh *routev3.VirtualHost, r *routev3.Route) {
	t.Helper()
	require.Len(t, vh.GetDomains(), 1, "connect virtual host %s", vh.GetName())
	host, ok := strings.CutSuffix(vh.GetDomains()[0], ":443")
	require.True(t, ok, "connect virtual host %s is not for port 443", vh.GetName())
	pr, found := c.in.Policy.Route(host)
	require.True(t, found, "CONNECT to %s, which the policy does not route", host)
	cl := c.out.clusters[r.GetRoute().GetCluster()]
	require.NotNil(t, cl, "CONNECT route %s names no cluster of the output", r.GetName())
	if pr.TLS == config.Passthrough {
		require.Equal(t, tunnelClusterName(host), cl.GetName())
		return
	}
	l := c.out.listeners[endpointAddress(t, cl).GetEnvoyInternalAddress().GetServerListenerName()]
	require.NotNil(t, l, "CONNECT to %s reaches no listener of the output", host)
	require.Equal(t, mitmListeners(c)[host], l, "CONNECT to %s reaches another host's listener", host)
}
