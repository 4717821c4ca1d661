package xds

import (
	"fmt"
	"regexp"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/egressgate/egressgate/config"
)

// proxyRoutes decides, per CONNECT authority, where the tunnel goes:
// intercepted hosts to the internal mitm listener, passthrough hosts straight
// to the host, everything else is refused with a body naming the host.
func proxyRoutes(p *config.Policy, admitted map[string]config.TLSMode) *routev3.RouteConfiguration {
	rc := &routev3.RouteConfiguration{Name: proxyRouteName}
	for _, r := range p.Routes {
		if mode, ok := admitted[r.Host]; admitted != nil && (!ok || mode != r.TLS) {
			continue
		}
		cluster := mitmClusterName(r.Host)
		if r.TLS == config.Passthrough {
			cluster = tunnelClusterName(r.Host)
		}
		rc.VirtualHosts = append(rc.VirtualHosts,
			&routev3.VirtualHost{
				Name:    "connect/" + r.Host,
				Domains: []string{r.Host + ":443"},
				Routes:  []*routev3.Route{connectRoute(r.Host, cluster)},
			},
			// Absolute-form plain HTTP to an allowed host would travel in
			// clear text and skip the MITM path; refuse it and say how to
			// ask properly.
			&routev3.VirtualHost{
				Name:    "plain/" + r.Host,
				Domains: []string{r.Host, r.Host + ":80"},
				Routes: []*routev3.Route{refusal("plain/"+r.Host, &routev3.RouteMatch{
					PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"},
				}, fmt.Sprintf("egressgate: plain http to %s refused: use https://%s (bottle %s allows only TLS)", r.Host, r.Host, p.Name), nil)},
			},
		)
	}
	why := fmt.Sprintf("egressgate: %%REQ(:AUTHORITY)%% refused: host not in the egress routes of bottle %s", p.Name)
	rc.VirtualHosts = append(rc.VirtualHosts, &routev3.VirtualHost{
		Name:    "refuse",
		Domains: []string{"*"},
		Routes: []*routev3.Route{
			refusal("refuse/connect", connectMatch(), why, nil),
			refusal("refuse/plain", &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}}, why, nil),
		},
	})
	return rc
}

func connectMatch() *routev3.RouteMatch {
	return &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_ConnectMatcher_{
		ConnectMatcher: &routev3.RouteMatch_ConnectMatcher{},
	}}
}

// connectRoute terminates the CONNECT (connect_config) and hands the raw
// tunnel bytes to cluster.
func connectRoute(host, cluster string) *routev3.Route {
	return &routev3.Route{
		Name:  "connect/" + host,
		Match: connectMatch(),
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster},
			UpgradeConfigs: []*routev3.RouteAction_UpgradeConfig{{
				UpgradeType:   "CONNECT",
				ConnectConfig: &routev3.RouteAction_UpgradeConfig_ConnectConfig{},
			}},
			// A tunnel lives as long as the agent keeps it open.
			Timeout: seconds(0),
		}},
	}
}

// mitmRoutes is the route configuration behind one intercepted host's TLS
// termination: the allowed requests go to the host's cluster carrying the
// route's credential binding; everything else is refused with a body naming
// the method and path.
func mitmRoutes(p *config.Policy, r config.Route) (*routev3.RouteConfiguration, error) {
	binding, err := routeBinding(p, r, nil)
	if err != nil {
		return nil, err
	}
	wsBinding := binding
	if r.DLP.Enabled() {
		if wsBinding, err = routeBinding(p, r, websocketDLPMode()); err != nil {
			return nil, err
		}
	}
	disabled, err := extProcDisabled()
	if err != nil {
		return nil, err
	}
	allowed := allowedMatches(r)
	routes := make([]*routev3.Route, 0, 2*len(allowed)+1)
	// Matches keep their order, so an answered match (listed first by its
	// template) wins over any broader one the manifest adds. Each plain
	// match has a WebSocket twin just before it: the same match plus an
	// upgrade, to the HTTP/1.1 twin of the host's cluster, with the same
	// binding. Answered matches have none: an upgrade there is refused.
	for i, a := range allowed {
		if a.answer != nil {
			b, err := answerBinding(p, r, a.answer)
			if err != nil {
				return nil, err
			}
			routes = append(routes, upstreamRoute(fmt.Sprintf("%s/%d", r.Host, i), a.match, upstreamClusterName(r.Host), b))
			continue
		}
		ws := proto.Clone(a.match).(*routev3.RouteMatch)
		ws.Headers = append(ws.Headers, websocketMatcher())
		routes = append(routes,
			upstreamRoute(fmt.Sprintf("%s/ws/%d", r.Host, i), ws, websocketClusterName(r.Host), wsBinding),
			upstreamRoute(fmt.Sprintf("%s/%d", r.Host, i), a.match, upstreamClusterName(r.Host), binding))
	}
	why := fmt.Sprintf("egressgate: %%REQ(:METHOD)%% %%REQ(:PATH)%% on %s refused: not allowed by the routes of bottle %s for %s", r.Host, p.Name, r.Host)
	routes = append(routes, refusal(r.Host+"/refuse", &routev3.RouteMatch{
		PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"},
	}, why, disabled))
	otherHost := fmt.Sprintf("egressgate: host %%REQ(:AUTHORITY)%% refused on a connection for %s: the TLS server name and the Host header must agree", r.Host)
	vhostLimit := (*wrapperspb.UInt64Value)(nil)
	if r.DLP.Enabled() {
		// The part of a body Envoy buffers for ext_proc to scan; the
		// listener's own per-connection limit (1 MiB) would cut it short.
		vhostLimit = wrapperspb.UInt64(uint64(r.DLP.MaxBody))
	}
	return &routev3.RouteConfiguration{
		Name: mitmRouteName(r.Host),
		VirtualHosts: []*routev3.VirtualHost{
			{Name: r.Host, Domains: []string{r.Host, r.Host + ":443"}, Routes: routes,
				// Envoy adds it to every request it forwards; the upstream
				// should see what the agent sent, less its credentials.
				RequestHeadersToRemove: []string{"x-forwarded-proto"},
				RequestBodyBufferLimit: vhostLimit},
			{Name: "refuse", Domains: []string{"*"}, Routes: []*routev3.Route{
				refusal(r.Host+"/other-host", &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}}, otherHost, disabled),
			}},
		},
	}, nil
}

func upstreamRoute(name string, m *routev3.RouteMatch, cluster string, binding *anypb.Any) *routev3.Route {
	return &routev3.Route{
		Name:  name,
		Match: m,
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster},
			// Agents stream long responses (SSE, WebSocket); the upstream
			// decides when a response is done.
			Timeout: seconds(0),
		}},
		TypedPerFilterConfig: map[string]*anypb.Any{extProcFilterName: binding},
	}
}

// websocketMatcher matches a WebSocket upgrade request. Agents open
// WebSockets over HTTP/1.1 (Codex does); the MITM listener does not accept
// HTTP/2 extended CONNECT.
func websocketMatcher() *routev3.HeaderMatcher {
	return &routev3.HeaderMatcher{
		Name: "upgrade",
		HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
			MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "websocket"},
			IgnoreCase:   true,
		}},
	}
}

// allowedMatch is one Envoy route match of a route, and the answer
// egressgate gives in the upstream's place, if any.
type allowedMatch struct {
	match  *routev3.RouteMatch
	answer *config.Answer
}

// allowedMatches turns a route's matches into Envoy route matches: one per
// (match, path) pair, each also requiring the match's methods.
func allowedMatches(r config.Route) []allowedMatch {
	if len(r.Matches) == 0 {
		return []allowedMatch{{match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}}}}
	}
	var out []allowedMatch
	for _, m := range r.Matches {
		paths := m.Paths
		if len(paths) == 0 {
			paths = []config.PathMatch{{Type: config.PathPrefix, Value: "/"}}
		}
		for _, pm := range paths {
			rm := &routev3.RouteMatch{}
			if pm.Type == config.PathExact {
				rm.PathSpecifier = &routev3.RouteMatch_Path{Path: pm.Value}
			} else {
				rm.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: pm.Value}
			}
			if len(m.Methods) > 0 {
				rm.Headers = []*routev3.HeaderMatcher{methodMatcher(m.Methods)}
			}
			out = append(out, allowedMatch{match: rm, answer: m.Answer})
		}
	}
	return out
}

func methodMatcher(methods []string) *routev3.HeaderMatcher {
	quoted := make([]string, len(methods))
	for i, m := range methods {
		quoted[i] = regexp.QuoteMeta(m)
	}
	return &routev3.HeaderMatcher{
		Name: ":method",
		HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
			MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{
				Regex: "^(" + strings.Join(quoted, "|") + ")$",
			}},
		}},
	}
}

// refusal answers 403 locally. The reason is in the body (agents and people
// read it) and in x-egressgate-refused, because proxy clients such as Go's
// and curl's show a failed CONNECT's headers or status but drop its body.
func refusal(name string, match *routev3.RouteMatch, why string, perFilter *anypb.Any) *routev3.Route {
	r := &routev3.Route{
		Name:  name,
		Match: match,
		Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{
			Status: 403,
			BodyFormat: &corev3.SubstitutionFormatString{
				Format: &corev3.SubstitutionFormatString_TextFormatSource{
					TextFormatSource: inlineString(why + "\n"),
				},
				ContentType: "text/plain; charset=utf-8",
			},
		}},
		ResponseHeadersToAdd: []*corev3.HeaderValueOption{{
			Header:       &corev3.HeaderValue{Key: "x-egressgate-refused", Value: why[len("egressgate: "):]},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		}},
	}
	if perFilter != nil {
		r.TypedPerFilterConfig = map[string]*anypb.Any{extProcFilterName: perFilter}
	}
	return r
}
