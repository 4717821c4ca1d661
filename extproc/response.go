package extproc

import (
	"slices"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/egressgate/egressgate/config"
)

// Credential headers an agent might send. They never reach an upstream
// (invariant 1): a route with no credential drops them, a route with one
// overwrites authorization with the host-held value.
const (
	headerAuthorization      = "authorization"
	headerProxyAuthorization = "proxy-authorization"
)

// stripResponse removes every credential header and sets nothing.
func stripResponse(strip []string) *extprocv3.ProcessingResponse {
	return requestHeadersResponse(&extprocv3.HeaderMutation{RemoveHeaders: strip})
}

// injectResponse overwrites the route's credential header (authorization
// with its scheme, or the named header with the raw value) and removes
// the other credential headers. The injected header is deliberately not
// also removed: whether Envoy applies removals before or after sets is an
// implementation detail, and OVERWRITE_IF_EXISTS_OR_ADD already replaces
// every agent-sent value.
func injectResponse(b binding, value config.Secret) *extprocv3.ProcessingResponse {
	name, v := headerAuthorization, b.Scheme+" "+value.Reveal()
	if b.Header != "" {
		name, v = b.Header, value.Reveal()
	}
	return requestHeadersResponse(&extprocv3.HeaderMutation{
		SetHeaders:    []*corev3.HeaderValueOption{overwrite(name, v)},
		RemoveHeaders: slices.DeleteFunc(slices.Clone(b.strip), func(h string) bool { return h == name }),
	})
}

// requestHeadersResponse continues the request with mutation applied. It
// never sets clear_route_cache: the header changes must not re-route the
// request away from the route whose credential was just injected
// (invariant 2).
func requestHeadersResponse(m *extprocv3.HeaderMutation) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_RequestHeaders{
			RequestHeaders: &extprocv3.HeadersResponse{
				Response: &extprocv3.CommonResponse{
					Status:         extprocv3.CommonResponse_CONTINUE,
					HeaderMutation: m,
				},
			},
		},
	}
}

// overwrite sets key to v, replacing any existing values. The value goes in
// raw_value: Envoy reads header values from raw_value and ignores value
// when raw_value is set, so value stays empty.
func overwrite(key, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: key, RawValue: []byte(v)},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

// continueOther answers a phase we did not ask Envoy for with an empty
// "continue", so a misconfigured processing mode degrades to a pass-through
// of that phase instead of a hung request. It returns nil for a message
// with no phase.
func continueOther(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
	var r extprocv3.ProcessingResponse
	switch req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		r.Response = &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}}
	case *extprocv3.ProcessingRequest_RequestBody:
		r.Response = &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{}}
	case *extprocv3.ProcessingRequest_ResponseBody:
		r.Response = &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{}}
	case *extprocv3.ProcessingRequest_RequestTrailers:
		r.Response = &extprocv3.ProcessingResponse_RequestTrailers{RequestTrailers: &extprocv3.TrailersResponse{}}
	case *extprocv3.ProcessingRequest_ResponseTrailers:
		r.Response = &extprocv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: &extprocv3.TrailersResponse{}}
	default:
		return nil
	}
	return &r
}
