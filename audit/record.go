// Package audit keeps the trail of what a bottle's agent tried: one JSON
// record per agent request and per refused or tunnelled CONNECT, built
// from the access log entries Envoy streams to egressgate, written to a
// rotated file (and optionally stdout) without ever holding up traffic.
//
// A record holds names, addresses, statuses and sizes. It never holds a
// credential, a header value or a query string (which can carry secrets).
package audit

import (
	"net"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	accesslogdatav3 "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"

	"github.com/egressgate/egressgate/extprocapi"
)

// Decisions: what the egress did with a request.
const (
	ForwardedWithCredential = "forwarded_with_credential"
	Forwarded               = "forwarded" // without a credential, or a passthrough tunnel
	Answered                = "answered"  // by the egress itself, nothing forwarded
	Refused                 = "refused"
	FailedClosed            = "failed_closed" // the credential service failed; refused
)

// Kinds of record.
const (
	KindRequest = "request" // an HTTP request (inside an intercepted tunnel, or plain http)
	KindConnect = "connect" // a CONNECT: refused, or a passthrough tunnel
)

// Custom tags the access logs carry (see xds), naming what the entry is
// from the listener's configuration, never from the request.
const (
	TagBottle   = "egressgate.bottle"
	TagListener = "egressgate.listener" // "proxy" or "mitm"
	TagHost     = "egressgate.host"     // the intercepted host (mitm)
	TagSlot     = "egressgate.slot"     // the host's credential slot, if any (mitm)
	// TagAgent names the filter state object holding the agent's address,
	// carried from the proxy listener into the internal listener.
	TagAgent = "egressgate.agent_address"
)

// Listener kinds in TagListener.
const (
	ListenerProxy = "proxy"
	ListenerMITM  = "mitm"
)

// Record is one line of the audit log.
type Record struct {
	Time   time.Time `json:"time"`
	Bottle string    `json:"bottle"`
	// Agent is the agent's address (host:port) as the proxy saw it.
	Agent  string `json:"agent,omitempty"`
	Kind   string `json:"kind"`
	Method string `json:"method,omitempty"`
	Host   string `json:"host"`
	Port   uint32 `json:"port,omitempty"`
	// Path is the request path without its query string.
	Path string `json:"path,omitempty"`
	// Route is the Envoy route the request matched ("" for none).
	Route    string `json:"route,omitempty"`
	Decision string `json:"decision"`
	// Reason says why a request was refused or answered, or how a
	// forwarded one ended when it did not end with the upstream's answer.
	Reason string `json:"reason,omitempty"`
	// Slot names the credential injected (never its value).
	Slot string `json:"slot,omitempty"`
	// Status is what the agent got; UpstreamStatus what the upstream
	// answered, when it was asked.
	Status         uint32  `json:"status"`
	UpstreamStatus uint32  `json:"upstream_status,omitempty"`
	BytesReceived  uint64  `json:"bytes_received"` // from the agent
	BytesSent      uint64  `json:"bytes_sent"`     // to the agent
	DurationMS     float64 `json:"duration_ms"`
	// DLP lists the secrets found in the request on a route with DLP on:
	// kinds, names and fingerprints, never a value.
	DLP []Detection `json:"dlp,omitempty"`
	// DLPUnscannedTail is set when the body was longer than the part the
	// egress scans and the route let the rest pass unscanned.
	DLPUnscannedTail bool `json:"dlp_unscanned_tail,omitempty"`
}

// Detection is one secret found in a request (see package dlp).
type Detection struct {
	// Where: "path", "header", "body", "trailer" or "websocket".
	Where string `json:"where"`
	Kind  string `json:"kind"`
	// Name is the slot, canary or pattern name; empty for formats.
	Name        string `json:"name,omitempty"`
	Fingerprint string `json:"fingerprint"`
	// Action is "block" (the request was refused) or "log".
	Action string `json:"action"`
}

// dlpDetections reads what ext_proc wrote to the request's dynamic
// metadata (extprocapi.DLPMetadataNamespace).
func dlpDetections(c *accesslogdatav3.AccessLogCommon) ([]Detection, bool) {
	ns := c.GetMetadata().GetFilterMetadata()[extprocapi.DLPMetadataNamespace]
	if ns == nil {
		return nil, false
	}
	var out []Detection
	if v := ns.GetFields()[extprocapi.DLPFindingsKey].GetStringValue(); v != "" {
		for _, e := range strings.Split(v, ",") {
			p := strings.Split(e, ":")
			if len(p) != 5 {
				continue
			}
			out = append(out, Detection{Where: p[0], Kind: p[1], Name: p[2], Fingerprint: p[3], Action: p[4]})
		}
	}
	return out, ns.GetFields()[extprocapi.DLPUnscannedKey].GetStringValue() == "true"
}

// FromEntry builds the record of one access log entry, or reports false
// for an entry that is not an agent request of its own: the CONNECT that
// carries an intercepted host's tunnel (its requests have records).
func FromEntry(e *accesslogdatav3.HTTPAccessLogEntry) (Record, bool) {
	c, req, resp := e.GetCommonProperties(), e.GetRequest(), e.GetResponse()
	tags := c.GetCustomTags()
	r := Record{
		Bottle: tags[TagBottle],
		// The socket's peer: the remote address can be set from
		// X-Forwarded-For, which the agent writes.
		Agent:         socketAddress(c.GetDownstreamDirectRemoteAddress()),
		Method:        req.GetRequestMethod().String(),
		Route:         c.GetRouteName(),
		Status:        resp.GetResponseCode().GetValue(),
		BytesReceived: req.GetRequestHeadersBytes() + req.GetRequestBodyBytes(),
		BytesSent:     resp.GetResponseHeadersBytes() + resp.GetResponseBodyBytes(),
	}
	if t := c.GetStartTime(); t != nil {
		r.Time = t.AsTime().UTC()
	}
	if d := c.GetDuration(); d != nil {
		r.DurationMS = float64(d.AsDuration().Microseconds()) / 1000
	}
	if r.Method == corev3.RequestMethod_METHOD_UNSPECIFIED.String() {
		r.Method = ""
	}
	if a := filterStateString(c, TagAgent); a != "" {
		r.Agent = a
	}
	r.Host, r.Port = splitAuthority(req.GetAuthority())
	details := shortDetails(resp.GetResponseCodeDetails())
	if tags[TagListener] == ListenerProxy {
		return proxyRecord(r, c, details)
	}
	r.Kind = KindRequest
	if h := tags[TagHost]; h != "" {
		r.Host = h // the host the tunnel and TLS were for
	}
	r.Path = withoutQuery(req.GetPath())
	decideMITM(&r, tags[TagSlot], details, c.GetResponseFlags())
	r.DLP, r.DLPUnscannedTail = dlpDetections(c)
	return r, true
}

// proxyRecord finishes the record of an entry of the proxy listener: a
// CONNECT or an absolute-form request, refused or tunnelled.
func proxyRecord(r Record, c *accesslogdatav3.AccessLogCommon, details string) (Record, bool) {
	r.Kind = KindRequest
	if r.Method == "CONNECT" {
		r.Kind = KindConnect
	}
	cluster := c.GetUpstreamCluster()
	switch {
	case strings.HasPrefix(cluster, "mitm/") && details != "direct_response":
		return r, false // the tunnel's requests have records of their own
	case strings.HasPrefix(cluster, "passthrough/"):
		r.Decision = Forwarded
		if details != "via_upstream" {
			r.Reason = details
		}
	case strings.HasPrefix(r.Route, "plain/"):
		r.Decision, r.Reason = Refused, "plain_http"
	default:
		r.Decision, r.Reason = Refused, "host_not_allowed"
	}
	return r, true
}

// decideMITM sets the decision of a request inside an intercepted
// tunnel from how Envoy ended it.
func decideMITM(r *Record, slot, details string, flags *accesslogdatav3.ResponseFlags) {
	switch {
	case details == "via_upstream":
		r.Decision, r.UpstreamStatus = Forwarded, r.Status
		if slot != "" {
			r.Decision, r.Slot = ForwardedWithCredential, slot
		}
	case details == "egressgate_refresh_answered" || details == "egressgate_routing_answered":
		r.Decision, r.Reason = Answered, strings.TrimPrefix(details, "egressgate_")
	case strings.HasPrefix(details, "egressgate_"):
		r.Decision, r.Reason, r.Slot = Refused, strings.TrimPrefix(details, "egressgate_"), slot
	case details == "direct_response" && strings.HasSuffix(r.Route, "/other-host"):
		r.Decision, r.Reason = Refused, "host_mismatch"
	case details == "direct_response":
		r.Decision, r.Reason = Refused, "not_allowed"
	case strings.HasPrefix(details, "ext_proc"):
		r.Decision, r.Reason = FailedClosed, details
	default:
		// Forwarded, but the upstream never answered (reset, timeout,
		// no connection): the details say how it ended.
		r.Decision, r.Reason = Forwarded, details
		if slot != "" {
			r.Decision, r.Slot = ForwardedWithCredential, slot
		}
		if flags.GetNoRouteFound() {
			r.Decision = Refused
		}
	}
}

func socketAddress(a *corev3.Address) string {
	sa := a.GetSocketAddress()
	if sa == nil {
		return ""
	}
	return net.JoinHostPort(sa.GetAddress(), strconv.FormatUint(uint64(sa.GetPortValue()), 10))
}

// filterStateString reads a string filter state object Envoy logged
// (filter_state_objects_to_log): a google.protobuf.StringValue.
func filterStateString(c *accesslogdatav3.AccessLogCommon, key string) string {
	a, ok := c.GetFilterStateObjects()[key]
	if !ok {
		return ""
	}
	return stringValue(a)
}

// splitAuthority splits host:port; an authority without a port is all
// host.
func splitAuthority(authority string) (string, uint32) {
	host, port, err := net.SplitHostPort(authority)
	if err != nil {
		return strings.ToLower(authority), 0
	}
	p, _ := strconv.ParseUint(port, 10, 16)
	return strings.ToLower(host), uint32(p)
}

// shortDetails keeps the code of Envoy's response code details and drops
// the explanation in braces ("ext_proc_error_gRPC_error_14{…connection
// refused…}"): the code says what happened, in a bounded set of values a
// metric label can carry.
func shortDetails(details string) string {
	if i := strings.IndexByte(details, '{'); i >= 0 {
		return details[:i]
	}
	return details
}

// withoutQuery drops the query string (and fragment): they can carry
// tokens, and the audit trail must not.
func withoutQuery(path string) string {
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		return path[:i]
	}
	return path
}
