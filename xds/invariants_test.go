package xds

// Security invariants of the translation, each its own test (DESIGN.md,
// "Security invariants"). A golden file shows them too, but only as lines
// a reviewer may wave through in a regenerated diff; these tests fail.
// Every one walks all the listeners, routes and clusters of every case,
// so a resource added later is held to the same rules.

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	mutationv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/extprocapi"
)

// invariantCase is one translated input and the index of its output.
type invariantCase struct {
	name string
	in   Input
	out  *index
}

// invariantCases are every golden input, plus the codex input in split
// mode (ext_proc over TLS) with only some hosts admitted yet: the
// resources of a host not yet admitted must hold the same invariants.
func invariantCases(t *testing.T) []invariantCase {
	t.Helper()
	inputs, err := filepath.Glob("testdata/in/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, inputs)
	var cases []invariantCase
	for _, path := range inputs {
		in := goldenInput(loadGolden(t, path))
		cases = append(cases, newCase(t, strings.TrimSuffix(filepath.Base(path), ".yaml"), in))
	}
	split := goldenInput(loadGolden(t, "testdata/in/codex.yaml"))
	split.ExtProcAddress = "extproc.bottle:9001"
	split.ExtProcTrustedCA = []byte("CONTROL CA")
	split.Admitted = map[string]config.TLSMode{"chatgpt.com": config.Intercept, "pypi.org": config.Passthrough}
	return append(cases, newCase(t, "codex-split-admitted", split))
}

func newCase(t *testing.T, name string, in Input) invariantCase {
	t.Helper()
	res, err := Translate(in)
	require.NoError(t, err, name)
	return invariantCase{name: name, in: in, out: indexResources(t, res)}
}

// index holds a translation's resources by name. Names must be unique
// within a type: Envoy would keep one of two same-named resources.
type index struct {
	listeners map[string]*listenerv3.Listener
	routes    map[string]*routev3.RouteConfiguration
	clusters  map[string]*clusterv3.Cluster
	secrets   map[string]*tlsv3.Secret
}

func indexResources(t *testing.T, r *Resources) *index {
	t.Helper()
	x := &index{
		listeners: map[string]*listenerv3.Listener{},
		routes:    map[string]*routev3.RouteConfiguration{},
		clusters:  map[string]*clusterv3.Cluster{},
		secrets:   map[string]*tlsv3.Secret{},
	}
	for _, m := range r.Listeners {
		l := m.(*listenerv3.Listener)
		require.NotContains(t, x.listeners, l.GetName(), "listener name used twice")
		x.listeners[l.GetName()] = l
	}
	for _, m := range r.Routes {
		rc := m.(*routev3.RouteConfiguration)
		require.NotContains(t, x.routes, rc.GetName(), "route configuration name used twice")
		x.routes[rc.GetName()] = rc
	}
	for _, m := range r.Clusters {
		c := m.(*clusterv3.Cluster)
		require.NotContains(t, x.clusters, c.GetName(), "cluster name used twice")
		x.clusters[c.GetName()] = c
	}
	for _, m := range r.Secrets {
		s := m.(*tlsv3.Secret)
		require.NotContains(t, x.secrets, s.GetName(), "secret name used twice")
		x.secrets[s.GetName()] = s
	}
	return x
}

// hcmOf unpacks the HTTP connection manager of a filter chain, which must
// be its only network filter: another filter could act on the bytes
// before or instead of it.
func hcmOf(t *testing.T, chain *listenerv3.FilterChain) *hcmv3.HttpConnectionManager {
	t.Helper()
	require.Len(t, chain.GetFilters(), 1, "chain %q", chain.GetName())
	hcm := &hcmv3.HttpConnectionManager{}
	require.NoError(t, chain.GetFilters()[0].GetTypedConfig().UnmarshalTo(hcm), "chain %q", chain.GetName())
	return hcm
}

// extProcOf returns the HCM's ext_proc filter config, or nil if it has
// none. A filter may appear once at most, enabled, and ahead of the
// router, which must be last: filters after the router never run, and a
// filter disabled here runs on no route.
func extProcOf(t *testing.T, hcm *hcmv3.HttpConnectionManager) *extprocv3.ExternalProcessor {
	t.Helper()
	filters := hcm.GetHttpFilters()
	require.NotEmpty(t, filters)
	require.Equal(t, "envoy.filters.http.router", filters[len(filters)-1].GetName(), "the router must be the last HTTP filter")
	var found *extprocv3.ExternalProcessor
	for _, f := range filters {
		cfg := &extprocv3.ExternalProcessor{}
		if f.GetName() != extProcFilterName && !f.GetTypedConfig().MessageIs(cfg) {
			continue
		}
		require.Nil(t, found, "ext_proc filter listed twice")
		require.False(t, f.GetDisabled(), "ext_proc filter disabled by default")
		require.False(t, f.GetIsOptional(), "ext_proc filter optional")
		require.NoError(t, f.GetTypedConfig().UnmarshalTo(cfg))
		found = cfg
	}
	return found
}

// mitmListeners are the internal listeners by the host their only filter
// chain serves; TestInvariantHostIsolation checks that shape.
func mitmListeners(c invariantCase) map[string]*listenerv3.Listener {
	out := map[string]*listenerv3.Listener{}
	for _, l := range c.out.listeners {
		if l.GetInternalListener() != nil && len(l.GetFilterChains()) == 1 {
			if names := l.GetFilterChains()[0].GetFilterChainMatch().GetServerNames(); len(names) == 1 {
				out[names[0]] = l
			}
		}
	}
	return out
}

// wantExtProc is the whole ext_proc filter config but for where it calls
// (grpc_service, checked apart) and its timeout: compared with protocmp,
// any other field set later (observability_mode, allow_mode_override, a
// status_on_error…) fails until it is looked at here.
func wantExtProc() *extprocv3.ExternalProcessor {
	names, prefixes := extprocapi.ForwardedHeaders()
	var patterns []*matcherv3.StringMatcher
	for _, n := range names {
		patterns = append(patterns, &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: n}, IgnoreCase: true})
	}
	for _, p := range prefixes {
		patterns = append(patterns, &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: p}, IgnoreCase: true})
	}
	return &extprocv3.ExternalProcessor{
		FailureModeAllow: false,
		ProcessingMode: &extprocv3.ProcessingMode{
			RequestHeaderMode:  extprocv3.ProcessingMode_SEND,
			ResponseHeaderMode: extprocv3.ProcessingMode_SKIP,
			RequestBodyMode:    extprocv3.ProcessingMode_NONE,
			ResponseBodyMode:   extprocv3.ProcessingMode_NONE,
			// Trailers can carry credentials too; ext_proc strips them.
			RequestTrailerMode:  extprocv3.ProcessingMode_SEND,
			ResponseTrailerMode: extprocv3.ProcessingMode_SKIP,
		},
		MutationRules:    &mutationv3.HeaderMutationRules{DisallowIsError: wrapperspb.Bool(true), AllowEnvoy: wrapperspb.Bool(true)},
		RouteCacheAction: extprocv3.ExternalProcessor_RETAIN,
		ForwardRules:     &extprocv3.HeaderForwardingRules{AllowedHeaders: &matcherv3.ListStringMatcher{Patterns: patterns}},
	}
}

// wantDLPExtProc is the filter of a host with DLP on: the same, except
// that every header and the body (buffered before any of it goes upstream,
// the agent's content-length kept) reach ext_proc, which may write its
// detections to the egressgate.dlp metadata namespace only.
func wantDLPExtProc() *extprocv3.ExternalProcessor {
	ep := wantExtProc()
	ep.ForwardRules = nil
	ep.ProcessingMode.RequestBodyMode = extprocv3.ProcessingMode_BUFFERED_PARTIAL
	ep.AllowContentLengthHeader = true
	ep.MetadataOptions = &extprocv3.MetadataOptions{ReceivingNamespaces: &extprocv3.MetadataOptions_MetadataNamespaces{Untyped: []string{"egressgate.dlp"}}}
	return ep
}

// TestInvariantExtProcFailsClosed: every HTTP connection manager that has
// an ext_proc filter (every MITM one must) refuses a request ext_proc
// cannot answer (invariant 3), keeps the route Envoy matched before asking
// it (invariant 2), sends it request headers and trailers only (no
// bodies, nothing of the response), treats a refused
// mutation as an error, and forwards only extprocapi.ForwardedHeaders().
func TestInvariantExtProcFailsClosed(t *testing.T) {
	for _, c := range invariantCases(t) {
		t.Run(c.name, func(t *testing.T) {
			mitm := mitmListeners(c)
			for name, l := range c.out.listeners {
				for _, chain := range l.GetFilterChains() {
					ep := extProcOf(t, hcmOf(t, chain))
					if l.GetInternalListener() != nil {
						require.NotNil(t, ep, "MITM listener %s has no ext_proc filter", name)
					}
					if ep == nil {
						continue
					}
					require.False(t, ep.GetFailureModeAllow(), "%s: failure_mode_allow", name)
					require.False(t, ep.GetObservabilityMode(), "%s: observability_mode does not wait for ext_proc", name)
					require.Equal(t, extprocv3.ExternalProcessor_RETAIN, ep.GetRouteCacheAction(), "%s: route_cache_action", name)
					require.True(t, ep.GetMutationRules().GetDisallowIsError().GetValue(), "%s: disallow_is_error", name)
					require.Equal(t, extprocv3.ProcessingMode_SEND, ep.GetProcessingMode().GetRequestHeaderMode(), "%s: request headers", name)
					checkExtProcService(t, c, name, ep.GetGrpcService())
					want := wantExtProc()
					if names := chain.GetFilterChainMatch().GetServerNames(); len(names) == 1 {
						if r, ok := c.in.Policy.Route(names[0]); ok && r.DLP.Enabled() {
							want = wantDLPExtProc()
						}
					}
					if diff := cmp.Diff(want, ep, protocmp.Transform(),
						protocmp.IgnoreFields(&extprocv3.ExternalProcessor{}, "grpc_service", "message_timeout")); diff != "" {
						t.Errorf("%s: ext_proc filter (-want +got):\n%s", name, diff)
					}
				}
			}
			require.Len(t, mitm, len(interceptedHosts(c.in.Policy)))
		})
	}
}

// checkExtProcService: ext_proc is egressgate's own server, reached
// through the extproc cluster with this Envoy's caller key.
func checkExtProcService(t *testing.T, c invariantCase, listener string, s *corev3.GrpcService) {
	t.Helper()
	require.Equal(t, extProcCluster, s.GetEnvoyGrpc().GetClusterName(), "%s: ext_proc service", listener)
	require.Contains(t, c.out.clusters, extProcCluster)
	var key []string
	for _, md := range s.GetInitialMetadata() {
		if md.GetKey() == extprocapi.MetadataCallerKey {
			key = append(key, md.GetValue())
		}
	}
	require.Equal(t, []string{c.in.ExtProcKey.Reveal()}, key, "%s: ext_proc caller key", listener)
}

func interceptedHosts(p *config.Policy) []string {
	var hosts []string
	for _, r := range p.Routes {
		if r.TLS != config.Passthrough {
			hosts = append(hosts, r.Host)
		}
	}
	return hosts
}

// TestInvariantMITMConnectionManager: every MITM connection manager
// normalises paths, merges slashes and rejects escaped slashes, so the
// path a route matched is the path the upstream acts on (a
// /backend-api/../admin must not ride the /backend-api/ credential); it
// adds no x-request-id; and every route it forwards on removes
// x-forwarded-proto, so the upstream sees what the agent sent.
func TestInvariantMITMConnectionManager(t *testing.T) {
	for _, c := range invariantCases(t) {
		t.Run(c.name, func(t *testing.T) {
			for name, l := range c.out.listeners {
				if l.GetInternalListener() == nil {
					continue
				}
				for _, chain := range l.GetFilterChains() {
					hcm := hcmOf(t, chain)
					require.NotNil(t, hcm.GetNormalizePath(), "%s: normalize_path unset (its default depends on a runtime flag)", name)
					require.True(t, hcm.GetNormalizePath().GetValue(), "%s: normalize_path", name)
					require.True(t, hcm.GetMergeSlashes(), "%s: merge_slashes", name)
					require.Equal(t, hcmv3.HttpConnectionManager_REJECT_REQUEST, hcm.GetPathWithEscapedSlashesAction(), "%s: path_with_escaped_slashes_action", name)
					require.NotNil(t, hcm.GetGenerateRequestId(), "%s: generate_request_id unset (defaults to true)", name)
					require.False(t, hcm.GetGenerateRequestId().GetValue(), "%s: generate_request_id", name)
					rc := c.out.routes[hcm.GetRds().GetRouteConfigName()]
					require.NotNil(t, rc, "%s: RDS names no route configuration of the output", name)
					checkForwardedProtoRemoved(t, rc)
				}
			}
		})
	}
}

func checkForwardedProtoRemoved(t *testing.T, rc *routev3.RouteConfiguration) {
	t.Helper()
	for _, vh := range rc.GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			if r.GetRoute() == nil {
				continue
			}
			removed := slices.Concat(rc.GetRequestHeadersToRemove(), vh.GetRequestHeadersToRemove(), r.GetRequestHeadersToRemove())
			require.Contains(t, removed, "x-forwarded-proto", "route %s of %s", r.GetName(), rc.GetName())
		}
	}
}

// TestInvariantHostIsolation: each intercepted host has its own internal
// listener, whose one filter chain is chosen by SNI = host (no default
// chain for a connection naming no or another host), presents the host's
// own leaf, and serves a route configuration that routes only host; the
// proxy hands the host's CONNECT to that listener alone. A connection
// opened for one host can thus reach no other host's cluster or slot.
func TestInvariantHostIsolation(t *testing.T) {
	for _, c := range invariantCases(t) {
		t.Run(c.name, func(t *testing.T) {
			internal := 0
			for _, l := range c.out.listeners {
				if l.GetInternalListener() != nil {
					internal++
				}
			}
			hosts := interceptedHosts(c.in.Policy)
			require.Equal(t, len(hosts), internal, "one internal listener per intercepted host, no other")
			seen := map[string]string{}
			for _, host := range hosts {
				l := mitmListeners(c)[host]
				require.NotNil(t, l, "no listener whose only chain serves %s", host)
				checkIsolatedListener(t, c, host, l)
				rds := hcmOf(t, l.GetFilterChains()[0]).GetRds().GetRouteConfigName()
				require.NotContains(t, seen, rds, "%s and %s share a route configuration", host, seen[rds])
				seen[rds] = host
				checkRoutesOnlyHost(t, host, c.out.routes[rds])
			}
		})
	}
}

func checkIsolatedListener(t *testing.T, c invariantCase, host string, l *listenerv3.Listener) {
	t.Helper()
	require.Nil(t, l.GetDefaultFilterChain(), "%s: a default chain would take connections naming another host", host)
	var inspector bool
	for _, f := range l.GetListenerFilters() {
		inspector = inspector || f.GetName() == "envoy.filters.listener.tls_inspector"
	}
	require.True(t, inspector, "%s: without the TLS inspector, no SNI to match", host)
	chain := l.GetFilterChains()[0]
	if diff := cmp.Diff(&listenerv3.FilterChainMatch{ServerNames: []string{host}}, chain.GetFilterChainMatch(), protocmp.Transform()); diff != "" {
		t.Errorf("%s: chain match (-want +got):\n%s", host, diff)
	}
	dtc := &tlsv3.DownstreamTlsContext{}
	require.NoError(t, chain.GetTransportSocket().GetTypedConfig().UnmarshalTo(dtc), host)
	sds := dtc.GetCommonTlsContext().GetTlsCertificateSdsSecretConfigs()
	require.Len(t, sds, 1, host)
	require.Empty(t, dtc.GetCommonTlsContext().GetTlsCertificates(), host)
	secret := c.out.secrets[sds[0].GetName()]
	require.NotNil(t, secret, "%s: leaf secret %s not in the output", host, sds[0].GetName())
	require.Equal(t, c.in.Leaves[host].CertPEM, secret.GetTlsCertificate().GetCertificateChain().GetInlineBytes(), "%s presents another host's leaf", host)
}

// checkRoutesOnlyHost: the route configuration behind host's listener
// forwards only requests for host; any other Host header is refused.
func checkRoutesOnlyHost(t *testing.T, host string, rc *routev3.RouteConfiguration) {
	t.Helper()
	require.NotNil(t, rc, "%s: its route configuration is not in the output", host)
	for _, vh := range rc.GetVirtualHosts() {
		ownHost := !slices.ContainsFunc(vh.GetDomains(), func(d string) bool { return d != host && d != host+":443" })
		for _, r := range vh.GetRoutes() {
			if r.GetRoute() != nil {
				require.True(t, ownHost, "%s: route %s forwards for domains %v", host, r.GetName(), vh.GetDomains())
			}
		}
	}
}
