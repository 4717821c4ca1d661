package xds

import (
	"fmt"
	"strconv"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	celv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/filters/cel/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	mutationv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/extprocapi"
)

// extProcMessageTimeout is far above Envoy's 200 ms default: a stalled
// ext_proc answer fails the request (fail closed), so the limit must only
// catch a server that is really stuck, not a busy one.
const extProcMessageTimeout = 2 * time.Second

// extProcFilter sends request headers, and request trailers where a
// request has them, and nothing else, to egressgate's ext_proc server.
// Every choice here fails closed. On a host whose requests are scanned for
// secrets (d enabled) it sends every header and the body too (dlpProcessing).
func extProcFilter(callerKey string, d config.DLP) (*hcmv3.HttpFilter, error) {
	ep := &extprocv3.ExternalProcessor{
		GrpcService:      extProcService(callerKey),
		FailureModeAllow: false,
		ProcessingMode: &extprocv3.ProcessingMode{
			RequestHeaderMode:  extprocv3.ProcessingMode_SEND,
			ResponseHeaderMode: extprocv3.ProcessingMode_SKIP,
			RequestBodyMode:    extprocv3.ProcessingMode_NONE,
			ResponseBodyMode:   extprocv3.ProcessingMode_NONE,
			// Trailers can carry an authorization too (HTTP/2, chunked
			// HTTP/1.1); Envoy sends them only for a request that has
			// them, so the common request pays nothing for this.
			RequestTrailerMode:  extprocv3.ProcessingMode_SEND,
			ResponseTrailerMode: extprocv3.ProcessingMode_SKIP,
		},
		MessageTimeout: seconds(extProcMessageTimeout),
		// A mutation Envoy refuses must fail the request, not silently
		// leave the agent's header in place.
		// allow_envoy: ext_proc removes the agent's x-envoy-* headers,
		// which Envoy's router would otherwise obey (retries, timeouts).
		MutationRules: &mutationv3.HeaderMutationRules{DisallowIsError: wrapBool(true), AllowEnvoy: wrapBool(true)},
		// The credential is bound to the route Envoy matched before asking
		// ext_proc; header changes must never move the request elsewhere.
		RouteCacheAction: extprocv3.ExternalProcessor_RETAIN,
		ForwardRules:     extProcForwardRules(),
	}
	if d.Enabled() {
		dlpProcessing(ep)
	}
	cfg, err := toAny(ep)
	if err != nil {
		return nil, err
	}
	return &hcmv3.HttpFilter{Name: extProcFilterName, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: cfg}}, nil
}

// dlpProcessing makes the filter of a scanned host send ext_proc what an
// agent could smuggle a secret out in: every header (no forward_rules) and
// the body, buffered by Envoy up to the route's request_body_buffer_limit
// and sent in one message before any of it goes upstream (BUFFERED_PARTIAL:
// a longer body's first part arrives with end_of_stream false, and the
// route's large-body action decides). A streamed body would reach the
// upstream chunk by chunk while later chunks are still being scanned.
func dlpProcessing(ep *extprocv3.ExternalProcessor) {
	ep.ForwardRules = nil
	ep.ProcessingMode.RequestBodyMode = extprocv3.ProcessingMode_BUFFERED_PARTIAL
	// ext_proc never changes the body, so the agent's content-length
	// stays true; without this Envoy would drop it and re-frame HTTP/1.1
	// bodies as chunked.
	ep.AllowContentLengthHeader = true
	// The detections go to the request's access log entries (the audit
	// trail) as dynamic metadata in this namespace only.
	ep.MetadataOptions = &extprocv3.MetadataOptions{
		ReceivingNamespaces: &extprocv3.MetadataOptions_MetadataNamespaces{Untyped: []string{extprocapi.DLPMetadataNamespace}},
	}
}

// extProcForwardRules sends ext_proc only the headers it decides on:
// Envoy serialises, and the server parses, every header sent, on every
// request. The credentials to strip are removed by name whether or not
// they are sent, so leaving them out weakens nothing.
func extProcForwardRules() *extprocv3.HeaderForwardingRules {
	names, prefixes := extprocapi.ForwardedHeaders()
	var patterns []*matcherv3.StringMatcher
	for _, n := range names {
		patterns = append(patterns, &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: n}, IgnoreCase: true})
	}
	for _, p := range prefixes {
		patterns = append(patterns, &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: p}, IgnoreCase: true})
	}
	return &extprocv3.HeaderForwardingRules{AllowedHeaders: &matcherv3.ListStringMatcher{Patterns: patterns}}
}

// routeBinding tells the ext_proc server, through gRPC metadata on the
// stream Envoy opens for this route's requests, which credential the route
// carries. This is how the binding comes from the matched route (DESIGN.md
// invariant 2) and never from the request's Host header.
func routeBinding(p *config.Policy, r config.Route, mode *extprocv3.ProcessingMode) (*anypb.Any, error) {
	b := baseBinding(p, r)
	if r.Auth != nil {
		slot, ok := p.Slot(r.Auth.Slot)
		if !ok {
			return nil, fmt.Errorf("route %s: unknown slot %s", r.Host, r.Auth.Slot)
		}
		b.Slot, b.Source = r.Auth.Slot, slot.Source.String()
		if r.Auth.Header != "" {
			b.Header = r.Auth.Header
		} else {
			b.Scheme = r.Auth.Scheme
		}
	}
	return perRouteMetadata(b, mode)
}

// websocketDLPMode is the processing mode of a scanned host's WebSocket
// routes: the frames are streamed to ext_proc, which scans each as it
// passes, since an upgraded request's body never ends and buffering it
// would stall the connection.
func websocketDLPMode() *extprocv3.ProcessingMode {
	return &extprocv3.ProcessingMode{
		RequestHeaderMode:   extprocv3.ProcessingMode_SEND,
		ResponseHeaderMode:  extprocv3.ProcessingMode_SKIP,
		RequestBodyMode:     extprocv3.ProcessingMode_STREAMED,
		ResponseBodyMode:    extprocv3.ProcessingMode_NONE,
		RequestTrailerMode:  extprocv3.ProcessingMode_SEND,
		ResponseTrailerMode: extprocv3.ProcessingMode_SKIP,
	}
}

// answerBinding asks the ext_proc server to answer the request itself,
// from the host credential in the answer's slot; the request is never
// forwarded, and if ext_proc cannot answer, Envoy fails it (fail closed).
func answerBinding(p *config.Policy, r config.Route, a *config.Answer) (*anypb.Any, error) {
	slot, ok := p.Slot(a.Slot)
	if !ok {
		return nil, fmt.Errorf("route %s: answer %s names unknown slot %q", r.Host, a.Kind, a.Slot)
	}
	b := baseBinding(p, r)
	b.Answer, b.Slot, b.Source = a.Kind, a.Slot, slot.Source.String()
	return perRouteMetadata(b, nil)
}

// baseBinding is what every route tells ext_proc: its host, and the
// bottle's strip list.
func baseBinding(p *config.Policy, r config.Route) extprocapi.Binding {
	b := extprocapi.Binding{Host: r.Host, Strip: extprocapi.JoinStrip(p.StripHeaders())}
	if r.DLP.Enabled() {
		b.DLP, b.DLPLarge, b.DLPMax = string(r.DLP.Mode), string(r.DLP.LargeBody), strconv.FormatInt(r.DLP.MaxBody, 10)
	}
	return b
}

// perRouteMetadata puts b on the route, with the route's own processing
// mode when mode is set. A binding ext_proc would refuse fails the
// translation here, not every request of the route.
func perRouteMetadata(b extprocapi.Binding, mode *extprocv3.ProcessingMode) (*anypb.Any, error) {
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("route %s: %w", b.Host, err)
	}
	var md []*corev3.HeaderValue
	for _, kv := range b.Metadata() {
		md = append(md, &corev3.HeaderValue{Key: kv[0], Value: kv[1]})
	}
	return toAny(&extprocv3.ExtProcPerRoute{Override: &extprocv3.ExtProcPerRoute_Overrides{
		Overrides: &extprocv3.ExtProcOverrides{GrpcInitialMetadata: md, ProcessingMode: mode},
	}})
}

// extProcDisabled skips ext_proc on routes that answer locally: a refusal
// needs no credential handling and should not depend on ext_proc being up.
func extProcDisabled() (*anypb.Any, error) {
	return toAny(&extprocv3.ExtProcPerRoute{Override: &extprocv3.ExtProcPerRoute_Disabled{Disabled: true}})
}

// extProcFailureReply gives the agent a reason when ext_proc fails (Envoy
// refuses the request, failing closed): by default Envoy answers an empty
// 500, which tells nobody anything. Only ext_proc's own failures match;
// its answers (refusals with bodies of their own) are left alone.
func extProcFailureReply() (*hcmv3.LocalReplyConfig, error) {
	cel, err := toAny(&celv3.ExpressionFilter{Expression: "response.code_details.startsWith('ext_proc_error')"})
	if err != nil {
		return nil, err
	}
	why := "egressgate: the egress's credential service (ext_proc) is unavailable, so %REQ(:METHOD)% %REQ(:PATH)% on %REQ(:AUTHORITY)% was not sent; check egressgate on the host"
	return &hcmv3.LocalReplyConfig{Mappers: []*hcmv3.ResponseMapper{{
		Filter: &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_ExtensionFilter{
			ExtensionFilter: &accesslogv3.ExtensionFilter{
				Name:       "envoy.access_loggers.extension_filters.cel",
				ConfigType: &accesslogv3.ExtensionFilter_TypedConfig{TypedConfig: cel},
			},
		}},
		// 503: the outage may pass; x-should-retry: false all the same,
		// so SDK clients show the reason instead of retrying in silence.
		StatusCode: wrapperspb.UInt32(503),
		BodyFormatOverride: &corev3.SubstitutionFormatString{
			Format:      &corev3.SubstitutionFormatString_TextFormatSource{TextFormatSource: inlineString(why + "\n")},
			ContentType: "text/plain; charset=utf-8",
		},
		HeadersToAdd: []*corev3.HeaderValueOption{{
			Header:       &corev3.HeaderValue{Key: "x-should-retry", Value: "false"},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		}},
	}}}, nil
}
