package xds

import (
	"path/filepath"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	setfilterstatecommonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/set_filter_state/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	setfilterstatev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/set_filter_state/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	internalupstreamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/internal_upstream/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/egressgate/egressgate/config"
)

// TestPackedConfigsAreValidated gives every builder that packs a message
// into an Any one invalid config and checks that toAny rejects it, naming
// the message and the field. ValidateAll on the resource holding the Any
// does not look inside it, so without this check each of these would pass
// Translate and fail only as an Envoy NACK.
//
// Builders are driven through their own arguments where an argument can
// make the packed message invalid; builders whose packed message is fixed
// are covered by packing an invalid message of the same type. RawBuffer
// (mitmCluster) and the CEL ExpressionFilter (extProcFailureReply) have no
// proto constraints at all, so there is nothing for them to fail.
func TestPackedConfigsAreValidated(t *testing.T) {
	// A header value may not hold a line break (Envoy's HTTP_HEADER_VALUE
	// rule); keys end up in gRPC metadata as header values.
	const badKey = "key\r\nx-injected: 1"
	longHost := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 63) + ".example"
	// The route's slot, for the builders that name its source.
	p := &config.Policy{Name: "demo", Slots: []config.Slot{{Name: "EGRESS_TOKEN_1", Source: config.Source{Kind: config.SourceEnv, Ref: "GITHUB_TOKEN"}, Value: config.NewSecret("env-secret")}}}
	authed := config.Route{Host: "api.example.com", TLS: config.Intercept, Auth: &config.Auth{Slot: "EGRESS_TOKEN_1", Scheme: "Bearer"}}

	tests := []struct {
		name string
		pack func() error
		// msg is the packed type the error must name; field and reason
		// are what the generated validation says is wrong.
		msg, field, reason string
	}{{
		name: "httpFilters: connection manager without stat_prefix or routes",
		pack: func() error { _, err := httpFilters(&hcmv3.HttpConnectionManager{}); return err },
		msg:  "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager", field: "StatPrefix", reason: "value length must be at least 1",
	}, {
		name: "extProcFilter: caller key that is no header value",
		pack: func() error { _, err := extProcFilter(badKey, config.DLP{}); return err },
		msg:  "envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor", field: "GrpcService", reason: "does not match regex",
	}, {
		name: "mitmListener: the chain's ext_proc filter is validated too",
		pack: func() error { _, err := mitmListener(p, authed, badKey, ""); return err },
		msg:  "envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor", field: "GrpcService", reason: "does not match regex",
	}, {
		name: "credentialLog: caller key that is no header value",
		pack: func() error { _, err := credentialLog(p, authed, badKey); return err },
		msg:  "envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig", field: "GrpcService", reason: "does not match regex",
	}, {
		name: "auditLog: empty bottle name as a custom tag",
		pack: func() error { _, err := auditLog(&config.Policy{}, "proxy", nil, "audit-key"); return err },
		msg:  "envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig", field: "CustomTags", reason: "value length must be at least 1",
	}, {
		// Packed directly: what perRouteMetadata is given is a route's
		// binding, which (extprocapi, on main) checks itself first.
		name: "perRouteMetadata's type: empty metadata key",
		pack: packErr(&extprocv3.ExtProcPerRoute{Override: &extprocv3.ExtProcPerRoute_Overrides{
			Overrides: &extprocv3.ExtProcOverrides{GrpcInitialMetadata: []*corev3.HeaderValue{{Key: "", Value: "v"}}},
		}}),
		msg: "envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute", field: "Key", reason: "value length must be at least 1",
	}, {
		name: "upstreamCluster: SNI longer than 255 bytes",
		pack: func() error {
			_, err := upstreamCluster(config.Route{Host: longHost, TLS: config.Intercept}, "/etc/ssl/certs/ca-certificates.crt")
			return err
		},
		msg: "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext", field: "Sni", reason: "at most 255 bytes",
	}, {
		name: "websocketCluster: no system CA file",
		pack: func() error {
			_, err := websocketCluster(config.Route{Host: "api.example.com", TLS: config.Intercept}, "")
			return err
		},
		msg: "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext", field: "Filename", reason: "value length must be at least 1",
	}, {
		name: "extProcClusterFor: TLS to a host whose SNI is too long",
		pack: func() error { _, err := extProcClusterFor(longHost+":9001", []byte("CA PEM")); return err },
		msg:  "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext", field: "Sni", reason: "at most 255 bytes",
	}, {
		// Fixed configs from here on: the message type each builder packs.
		name: "agentAddressFilter's type: filter state value without a key",
		pack: packErr(&setfilterstatev3.Config{OnRequestHeaders: []*setfilterstatecommonv3.FilterStateValue{{}}}),
		msg:  "envoy.extensions.filters.http.set_filter_state.v3.Config", field: "Key", reason: "value is required",
	}, {
		name: "mitmListener's inspector type: read buffer below the minimum",
		pack: packErr(&tlsinspectorv3.TlsInspector{InitialReadBufferSize: wrapperspb.UInt32(1)}),
		msg:  "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector", field: "InitialReadBufferSize", reason: "value must be",
	}, {
		name: "mitmFilterChain's TLS type: negative session timeout",
		pack: packErr(&tlsv3.DownstreamTlsContext{SessionTimeout: durationpb.New(-1)}),
		msg:  "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext", field: "SessionTimeout", reason: "value must be inside range",
	}, {
		name: "httpFilters' router type: a header the router cannot check",
		pack: packErr(&routerv3.Router{StrictCheckHeaders: []string{"x-not-checkable"}}),
		msg:  "envoy.extensions.filters.http.router.v3.Router", field: "StrictCheckHeaders", reason: "value must be in list",
	}, {
		name: "extProcDisabled's type: disabled set to false",
		pack: packErr(&extprocv3.ExtProcPerRoute{Override: &extprocv3.ExtProcPerRoute_Disabled{Disabled: false}}),
		msg:  "envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute", field: "Disabled", reason: "value must equal true",
	}, {
		name: "tlsCluster and extProcHTTP2's type: no protocol chosen",
		pack: packErr(&upstreamhttpv3.HttpProtocolOptions{}),
		msg:  "envoy.extensions.upstreams.http.v3.HttpProtocolOptions", field: "UpstreamProtocolOptions", reason: "value is required",
	}, {
		name: "mitmCluster's carrier type: no inner transport socket",
		pack: packErr(&internalupstreamv3.InternalUpstreamTransport{}),
		msg:  "envoy.extensions.transport_sockets.internal_upstream.v3.InternalUpstreamTransport", field: "TransportSocket", reason: "value is required",
	}, {
		name: "a message without generated validation",
		pack: packErr(&structpb.Struct{}),
		msg:  "google.protobuf.Struct", reason: "no ValidateAll method",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.pack()
			require.Error(t, err)
			// "pack <type>:" is toAny's prefix: the error came from the
			// packing step, not from the builder's own checks.
			require.ErrorContains(t, err, "pack "+tc.msg+":")
			require.ErrorContains(t, err, tc.field)
			require.ErrorContains(t, err, tc.reason)
		})
	}
}

// packErr packs m on its own, for the builders whose packed config is
// fixed.
func packErr(m proto.Message) func() error {
	return func() error { _, err := toAny(m); return err }
}

// TestTranslateRejectsAnInvalidPackedConfig: the error reaches Translate's
// caller, naming the bottle and the packed type. An empty SystemCAFile is
// the realistic case: Envoy would have NACKed the clusters' TLS context.
func TestTranslateRejectsAnInvalidPackedConfig(t *testing.T) {
	in := goldenInput(loadGolden(t, filepath.Join("testdata", "in", "codex.yaml")))
	_, err := Translate(in)
	require.NoError(t, err, "precondition: the golden input translates")

	in.SystemCAFile = ""
	_, err = Translate(in)
	require.ErrorContains(t, err, "translate bottle "+in.Policy.Name)
	require.ErrorContains(t, err, "pack envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext:")
}
