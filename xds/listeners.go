package xds

import (
	"fmt"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	setfilterstatecommonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/set_filter_state/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	setfilterstatev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/set_filter_state/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/egressgate/egressgate/audit"
	"github.com/egressgate/egressgate/config"
)

// proxyListener is what the agent's HTTPS_PROXY points at. It only routes:
// CONNECT to an allowed host is terminated and its bytes handed on, anything
// else is refused by the "proxy" route configuration.
func proxyListener(p *config.Policy, addr, auditKey string) (*listenerv3.Listener, error) {
	host, port, err := splitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("proxy listener: %w", err)
	}
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix: "proxy",
		CodecType:  hcmv3.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			ConfigSource: adsSource(), RouteConfigName: proxyRouteName,
		}},
		// CONNECT must be declared as an upgrade for Envoy to terminate it
		// (the route's connect_config does the terminating).
		UpgradeConfigs:       []*hcmv3.HttpConnectionManager_UpgradeConfig{{UpgradeType: "CONNECT"}},
		Http2ProtocolOptions: &corev3.Http2ProtocolOptions{AllowConnect: true},
		// The agent is the edge: an X-Forwarded-For it sends must not
		// become the address the audit trail gives it.
		UseRemoteAddress: wrapBool(true),
	}
	if auditKey != "" {
		// Refused CONNECTs and passthrough tunnels are agent requests the
		// audit trail must show; nothing else sees them.
		log, err := auditLog(p, audit.ListenerProxy, nil, auditKey)
		if err != nil {
			return nil, err
		}
		hcm.AccessLog = append(hcm.AccessLog, log)
	}
	var before []*hcmv3.HttpFilter
	if auditKey != "" {
		carry, err := agentAddressFilter()
		if err != nil {
			return nil, err
		}
		before = append(before, carry)
	}
	filters, err := httpFilters(hcm, before...)
	if err != nil {
		return nil, err
	}
	return &listenerv3.Listener{
		Name:         proxyListenerName,
		Address:      socketAddress(host, port),
		FilterChains: []*listenerv3.FilterChain{{Filters: filters}},
	}, nil
}

// agentAddressFilter records, on each CONNECT the proxy accepts, the
// agent's address as filter state shared with the tunnel's upstream: an
// intercepted host's requests arrive on an internal listener, where the
// downstream address is Envoy itself, and the audit trail must still say
// which agent sent them. Each HTTP/2 CONNECT stream gets its own copy, so
// multiplexed tunnels keep their own addresses. It is the socket's peer,
// so no header the agent sends can change it.
func agentAddressFilter() (*hcmv3.HttpFilter, error) {
	cfg, err := toAny(&setfilterstatev3.Config{OnRequestHeaders: []*setfilterstatecommonv3.FilterStateValue{{
		Key:        &setfilterstatecommonv3.FilterStateValue_ObjectKey{ObjectKey: audit.TagAgent},
		FactoryKey: "envoy.string",
		Value: &setfilterstatecommonv3.FilterStateValue_FormatString{FormatString: &corev3.SubstitutionFormatString{
			Format: &corev3.SubstitutionFormatString_TextFormatSource{TextFormatSource: &corev3.DataSource{
				Specifier: &corev3.DataSource_InlineString{InlineString: "%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%"},
			}},
		}},
		SharedWithUpstream: setfilterstatecommonv3.FilterStateValue_ONCE,
	}}})
	if err != nil {
		return nil, err
	}
	return &hcmv3.HttpFilter{
		Name:       "envoy.filters.http.set_filter_state",
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: cfg},
	}, nil
}

// mitmListener is the internal listener an intercepted host's CONNECT
// payloads land on, one per host: the tunnel the proxy opened for a host
// can only meet that host's TLS chain (SNI must name the host too), its
// leaf certificate and its route configuration. A connection opened for
// one host can never reach another host's cluster or credential, and
// adding or removing a host never touches another host's listener.
func mitmListener(p *config.Policy, r config.Route, extProcKey, auditKey string) (*listenerv3.Listener, error) {
	host := r.Host
	inspector, err := toAny(&tlsinspectorv3.TlsInspector{})
	if err != nil {
		return nil, err
	}
	chain, err := mitmFilterChain(p, r, extProcKey, auditKey)
	if err != nil {
		return nil, err
	}
	return &listenerv3.Listener{
		Name: mitmListenerName(host),
		ListenerSpecifier: &listenerv3.Listener_InternalListener{
			InternalListener: &listenerv3.Listener_InternalListenerConfig{},
		},
		ListenerFilters: []*listenerv3.ListenerFilter{{
			Name:       "envoy.filters.listener.tls_inspector",
			ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: inspector},
		}},
		FilterChains: []*listenerv3.FilterChain{chain},
	}, nil
}

func mitmFilterChain(p *config.Policy, r config.Route, extProcKey, auditKey string) (*listenerv3.FilterChain, error) {
	host := r.Host
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix: "mitm",
		CodecType:  hcmv3.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			ConfigSource: adsSource(), RouteConfigName: mitmRouteName(host),
		}},
		UpgradeConfigs: []*hcmv3.HttpConnectionManager_UpgradeConfig{{UpgradeType: "websocket"}},
		// No x-request-id added upstream: the upstream sees what the
		// agent sent (an agent's own x-request-id passes unchanged).
		GenerateRequestId: wrapBool(false),
		// Routes match the path Envoy sees, upstreams act on the path they
		// normalise: without these, /backend-api/../admin matches the
		// /backend-api/ prefix, gets the credential, and reaches /admin.
		NormalizePath:                wrapBool(true),
		MergeSlashes:                 true,
		PathWithEscapedSlashesAction: hcmv3.HttpConnectionManager_REJECT_REQUEST,
	}
	extProc, err := extProcFilter(extProcKey, r.DLP)
	if err != nil {
		return nil, err
	}
	if hcm.LocalReplyConfig, err = extProcFailureReply(); err != nil {
		return nil, err
	}
	if auditKey != "" {
		audited, err := auditLog(p, audit.ListenerMITM, &r, auditKey)
		if err != nil {
			return nil, err
		}
		hcm.AccessLog = append(hcm.AccessLog, audited)
	}
	if r.Auth != nil {
		log, err := credentialLog(p, r, extProcKey)
		if err != nil {
			return nil, err
		}
		hcm.AccessLog = append(hcm.AccessLog, log)
	}
	filters, err := httpFilters(hcm, extProc)
	if err != nil {
		return nil, err
	}
	tls, err := toAny(&tlsv3.DownstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
		AlpnProtocols: []string{"h2", "http/1.1"},
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{
			Name: leafSecretName(host), SdsConfig: adsSource(),
		}},
	}})
	if err != nil {
		return nil, err
	}
	return &listenerv3.FilterChain{
		Name:             host,
		FilterChainMatch: &listenerv3.FilterChainMatch{ServerNames: []string{host}},
		Filters:          filters,
		TransportSocket: &corev3.TransportSocket{
			Name:       "envoy.transport_sockets.tls",
			ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: tls},
		},
	}, nil
}

// httpFilters finishes hcm with its HTTP filters (before, in order, then
// the router) and wraps it as the chain's only network filter.
func httpFilters(hcm *hcmv3.HttpConnectionManager, before ...*hcmv3.HttpFilter) ([]*listenerv3.Filter, error) {
	// The upstream is someone else's service: it should not learn about
	// Envoy through x-envoy-* headers.
	router, err := toAny(&routerv3.Router{SuppressEnvoyHeaders: true})
	if err != nil {
		return nil, err
	}
	hcm.HttpFilters = append(hcm.HttpFilters, before...)
	hcm.HttpFilters = append(hcm.HttpFilters, &hcmv3.HttpFilter{
		Name:       "envoy.filters.http.router",
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: router},
	})
	typed, err := toAny(hcm)
	if err != nil {
		return nil, err
	}
	return []*listenerv3.Filter{{
		Name:       "envoy.filters.network.http_connection_manager",
		ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: typed},
	}}, nil
}
