package audit

import (
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	accesslogdatav3 "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/egressgate/egressgate/extprocapi"
)

var t0 = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

// entry is an access log entry of listener, as Envoy sends it.
type entry struct {
	listener, host, slot   string
	method                 corev3.RequestMethod
	authority, path, route string
	cluster, details       string
	status                 uint32
	noRoute                bool
}

func (e entry) proto() *accesslogdatav3.HTTPAccessLogEntry {
	tags := map[string]string{TagBottle: "demo", TagListener: e.listener}
	if e.host != "" {
		tags[TagHost] = e.host
	}
	if e.slot != "" {
		tags[TagSlot] = e.slot
	}
	return &accesslogdatav3.HTTPAccessLogEntry{
		CommonProperties: &accesslogdatav3.AccessLogCommon{
			StartTime:  timestamppb.New(t0),
			Duration:   durationpb.New(1500 * time.Microsecond),
			CustomTags: tags,
			RouteName:  e.route, UpstreamCluster: e.cluster,
			DownstreamDirectRemoteAddress: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 40000}}}},
			ResponseFlags: &accesslogdatav3.ResponseFlags{NoRouteFound: e.noRoute},
		},
		Request: &accesslogdatav3.HTTPRequestProperties{RequestMethod: e.method, Authority: e.authority, Path: e.path,
			RequestHeadersBytes: 100, RequestBodyBytes: 20},
		Response: &accesslogdatav3.HTTPResponseProperties{ResponseCode: wrapperspb.UInt32(e.status), ResponseCodeDetails: e.details,
			ResponseHeadersBytes: 50, ResponseBodyBytes: 7},
	}
}

// TestFromEntry: each way Envoy ends a request becomes the decision and
// reason an operator reads, from the listener's tags and Envoy's response
// code details, never from the agent's headers.
func TestFromEntry(t *testing.T) {
	get, connect, post := corev3.RequestMethod_GET, corev3.RequestMethod_CONNECT, corev3.RequestMethod_POST
	mitm := func(e entry) entry { e.listener, e.host = ListenerMITM, "chatgpt.com"; return e }
	tests := []struct {
		name string
		e    entry
		want Record // only the fields that vary
	}{
		{"forwarded with credential", mitm(entry{slot: "EGRESS_TOKEN_0", method: get, authority: "chatgpt.com", path: "/backend-api/x?token=secret", route: "chatgpt.com/0", details: "via_upstream", status: 200}),
			Record{Kind: KindRequest, Method: "GET", Host: "chatgpt.com", Path: "/backend-api/x", Route: "chatgpt.com/0", Decision: ForwardedWithCredential, Slot: "EGRESS_TOKEN_0", Status: 200, UpstreamStatus: 200}},
		{"forwarded without", mitm(entry{method: get, authority: "chatgpt.com", path: "/a", route: "chatgpt.com/0", details: "via_upstream", status: 404}),
			Record{Kind: KindRequest, Method: "GET", Host: "chatgpt.com", Path: "/a", Route: "chatgpt.com/0", Decision: Forwarded, Status: 404, UpstreamStatus: 404}},
		{"upstream never answered", mitm(entry{slot: "EGRESS_TOKEN_0", method: get, authority: "chatgpt.com", path: "/a", route: "chatgpt.com/0", details: "upstream_reset_before_response_started{connection_failure}", status: 503}),
			Record{Kind: KindRequest, Method: "GET", Host: "chatgpt.com", Path: "/a", Route: "chatgpt.com/0", Decision: ForwardedWithCredential, Slot: "EGRESS_TOKEN_0", Reason: "upstream_reset_before_response_started", Status: 503}},
		{"answered", mitm(entry{method: post, authority: "chatgpt.com", path: "/oauth/token", route: "auth.openai.com/0", details: "egressgate_refresh_answered", status: 200}),
			Record{Kind: KindRequest, Method: "POST", Host: "chatgpt.com", Path: "/oauth/token", Route: "auth.openai.com/0", Decision: Answered, Reason: "refresh_answered", Status: 200}},
		{"credential refused", mitm(entry{slot: "EGRESS_TOKEN_0", method: get, authority: "chatgpt.com", path: "/a", route: "chatgpt.com/0", details: "egressgate_credential_expired", status: 400}),
			Record{Kind: KindRequest, Method: "GET", Host: "chatgpt.com", Path: "/a", Route: "chatgpt.com/0", Decision: Refused, Reason: "credential_expired", Slot: "EGRESS_TOKEN_0", Status: 400}},
		{"path refused", mitm(entry{method: get, authority: "chatgpt.com", path: "/admin", route: "chatgpt.com/refuse", details: "direct_response", status: 403}),
			Record{Kind: KindRequest, Method: "GET", Host: "chatgpt.com", Path: "/admin", Route: "chatgpt.com/refuse", Decision: Refused, Reason: "not_allowed", Status: 403}},
		{"other host on the tunnel", mitm(entry{method: get, authority: "evil.test", path: "/", route: "chatgpt.com/other-host", details: "direct_response", status: 403}),
			Record{Kind: KindRequest, Method: "GET", Host: "chatgpt.com", Path: "/", Route: "chatgpt.com/other-host", Decision: Refused, Reason: "host_mismatch", Status: 403}},
		{"failed closed", mitm(entry{slot: "EGRESS_TOKEN_0", method: get, authority: "chatgpt.com", path: "/a", route: "chatgpt.com/0", details: "ext_proc_error_gRPC_error_14{connection_refused}", status: 503}),
			Record{Kind: KindRequest, Method: "GET", Host: "chatgpt.com", Path: "/a", Route: "chatgpt.com/0", Decision: FailedClosed, Reason: "ext_proc_error_gRPC_error_14", Status: 503}},
		{"refused connect", entry{listener: ListenerProxy, method: connect, authority: "Evil.Test:443", route: "refuse/connect", details: "direct_response", status: 403},
			Record{Kind: KindConnect, Method: "CONNECT", Host: "evil.test", Port: 443, Route: "refuse/connect", Decision: Refused, Reason: "host_not_allowed", Status: 403}},
		{"plain http", entry{listener: ListenerProxy, method: get, authority: "chatgpt.com", route: "plain/chatgpt.com", details: "direct_response", status: 403},
			Record{Kind: KindRequest, Method: "GET", Host: "chatgpt.com", Route: "plain/chatgpt.com", Decision: Refused, Reason: "plain_http", Status: 403}},
		{"passthrough tunnel", entry{listener: ListenerProxy, method: connect, authority: "pypi.org:443", route: "connect/pypi.org", cluster: "passthrough/pypi.org", details: "via_upstream", status: 200},
			Record{Kind: KindConnect, Method: "CONNECT", Host: "pypi.org", Port: 443, Route: "connect/pypi.org", Decision: Forwarded, Status: 200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := FromEntry(tt.e.proto())
			assert.True(t, ok)
			want := tt.want
			want.Time, want.Bottle, want.Agent = t0, "demo", "127.0.0.1:40000"
			want.BytesReceived, want.BytesSent, want.DurationMS = 120, 57, 1.5
			assert.Equal(t, want, got)
		})
	}

	// The CONNECT carrying an intercepted host's tunnel is no request of
	// its own: its requests have records.
	_, ok := FromEntry(entry{listener: ListenerProxy, method: connect, authority: "chatgpt.com:443", route: "connect/chatgpt.com",
		cluster: "mitm/chatgpt.com", details: "via_upstream", status: 200}.proto())
	assert.False(t, ok)
}

// TestFromEntryDLP: the detections ext_proc wrote to the request's dynamic
// metadata become the record's dlp list, fingerprints and names only.
func TestFromEntryDLP(t *testing.T) {
	e := entry{listener: ListenerMITM, host: "api.github.com", method: corev3.RequestMethod_POST, authority: "api.github.com",
		path: "/repos/o/r/issues", route: "api.github.com/0", details: "egressgate_dlp_secret", status: 403}.proto()
	e.CommonProperties.Metadata = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
		extprocapi.DLPMetadataNamespace: {Fields: map[string]*structpb.Value{
			extprocapi.DLPFindingsKey:  structpb.NewStringValue("body:canary:aws-access-key-id@r1:0123456789ab:block,header:jwt::ba9876543210:log,garbled"),
			extprocapi.DLPUnscannedKey: structpb.NewStringValue("true"),
		}},
	}}
	got, ok := FromEntry(e)
	require.True(t, ok)
	assert.Equal(t, Refused, got.Decision)
	assert.Equal(t, "dlp_secret", got.Reason)
	assert.Equal(t, []Detection{
		{Where: "body", Kind: "canary", Name: "aws-access-key-id@r1", Fingerprint: "0123456789ab", Action: "block"},
		{Where: "header", Kind: "jwt", Fingerprint: "ba9876543210", Action: "log"},
	}, got.DLP)
	assert.True(t, got.DLPUnscannedTail)

	plain, _ := FromEntry(entry{listener: ListenerMITM, host: "a.test", method: corev3.RequestMethod_GET, authority: "a.test", path: "/", route: "a.test/0", details: "via_upstream", status: 200}.proto())
	assert.Nil(t, plain.DLP)
	assert.False(t, plain.DLPUnscannedTail)
}
