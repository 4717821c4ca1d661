// Package extprocapi is the contract between the translation (package xds),
// which configures Envoy, and the ext_proc server (package extproc), which
// Envoy calls: the route binding Envoy carries as gRPC initial metadata on
// every ext_proc stream, the caller key, the request headers Envoy forwards,
// and the credential access log's name and tags. Both ends import this
// package and neither imports the other, so one change of the contract is
// one change here.
package extprocapi

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/egressgate/egressgate/config"
)

// MetadataCallerKey carries the key Envoy presents on every ext_proc stream
// (the ext_proc filter's grpc_service initial_metadata). ext_proc answers
// with credentials, so it must answer only the bottle's Envoy, even when it
// listens on an address others can reach (a sidecar in its own container).
const MetadataCallerKey = "x-egressgate-extproc-key"

// gRPC initial metadata keys carrying the route binding. The translation
// sets them per route (ExtProcPerRoute.overrides.grpc_initial_metadata), so
// Envoy sends them on the ext_proc stream of every request it routed there.
// They come from the route Envoy matched, which is what ties a credential to
// that route's own cluster (DESIGN invariant 2). The request's Host or
// :authority header is never consulted: the agent controls it.
const (
	MetadataHost   = "x-egressgate-host"   // route host, for messages/logs only
	MetadataSlot   = "x-egressgate-slot"   // e.g. EGRESS_TOKEN_0; absent = route injects nothing
	MetadataScheme = "x-egressgate-scheme" // "Bearer" or "token"
	// MetadataSource names the slot's credential source (config.Source's
	// String). Slot numbers follow the manifest order, so a reload can give
	// EGRESS_TOKEN_0 another source; while Envoy still holds the old routes,
	// the source check refuses the request instead of sending one host's
	// credential to another.
	MetadataSource = "x-egressgate-source"
	// MetadataHeader, instead of a scheme, names the header that carries
	// the raw value (e.g. x-api-key).
	MetadataHeader = "x-egressgate-header"
	// MetadataStrip lists (comma-separated) the headers removed from every
	// request of the bottle: every header any of its routes injects.
	MetadataStrip = "x-egressgate-strip"
	// MetadataAnswer asks ext_proc to answer the request itself from the
	// slot's host credential (config.AnswerCodexRefresh); nothing is
	// forwarded.
	MetadataAnswer = "x-egressgate-answer"
	// MetadataDLP turns on outbound secret detection for the route's
	// requests: "block" or "log" (config.DLPMode); absent is off. Envoy then
	// sends every request header and the body (see DLPMetadataNamespace).
	MetadataDLP = "x-egressgate-dlp"
	// MetadataDLPLarge is what happens to a body longer than the part Envoy
	// buffers for the scan: "block" or "pass" (config.LargeBodyAction).
	MetadataDLPLarge = "x-egressgate-dlp-large"
	// MetadataDLPMax is how many body bytes are scanned, in decimal: Envoy
	// buffers at least that much (the route's request_body_buffer_limit)
	// but may send more, since the listener's own limit can be higher.
	MetadataDLPMax = "x-egressgate-dlp-max"
)

// DLPMetadataNamespace is the dynamic metadata namespace ext_proc writes its
// detections to (the filter accepts it through metadata_options), so the
// request's audit record, built from Envoy's access log, carries them.
// DLPFindingsKey holds the findings as one string: entries separated by
// ",", each "where:kind:name:fingerprint:action" (name may be empty; none of
// the fields can hold a secret).
const (
	DLPMetadataNamespace = "egressgate.dlp"
	DLPFindingsKey       = "findings"
	// DLPUnscannedKey is set ("true") when a body was longer than the
	// scanned part and the route let the rest pass unscanned.
	DLPUnscannedKey = "unscanned_tail"
)

// Binding is what a route asks of ext_proc for each of its requests, as
// the metadata carries it. It is comparable, so the server can keep what
// it derived from one by value.
type Binding struct {
	Host   string // display only
	Slot   string // "" when the route injects nothing
	Scheme string // with Header "", the Authorization scheme
	Header string // when set, the header carrying the raw value
	Source string // the slot's expected source; "" skips the check
	Answer string // when set, egressgate answers instead of the upstream
	Strip  string // comma-separated header names removed from every request
	// DLP is "block" or "log" when the route's requests are scanned for
	// secrets, "" when not; DLPLarge decides for a body longer than the
	// scanned part ("block" or "pass").
	DLP      string
	DLPLarge string
	DLPMax   string
}

// bindingKeys are the metadata keys of a Binding's fields, in the order
// of values.
var bindingKeys = [...]string{MetadataHost, MetadataStrip, MetadataAnswer, MetadataSlot, MetadataSource, MetadataHeader, MetadataScheme, MetadataDLP, MetadataDLPLarge, MetadataDLPMax}

func (b Binding) values() [len(bindingKeys)]string {
	return [...]string{b.Host, b.Strip, b.Answer, b.Slot, b.Source, b.Header, b.Scheme, b.DLP, b.DLPLarge, b.DLPMax}
}

// Metadata is b as initial metadata key, value pairs, in a fixed order;
// empty fields are left out.
func (b Binding) Metadata() [][2]string {
	var out [][2]string
	for i, v := range b.values() {
		if v != "" {
			out = append(out, [2]string{bindingKeys[i], v})
		}
	}
	return out
}

// ReadBinding reads a stream's binding through values, which returns the
// values metadata holds for a key. A key sent more than once is an error:
// two slots on one route would leave ext_proc choosing a credential. The
// binding is read, not checked (see Validate). It runs on every request,
// so it allocates nothing of its own.
func ReadBinding(values func(key string) []string) (Binding, error) {
	var v [len(bindingKeys)]string
	for i, key := range bindingKeys {
		switch got := values(key); len(got) {
		case 0:
		case 1:
			v[i] = got[0]
		default:
			return Binding{Host: v[0]}, fmt.Errorf("metadata %s has %d values, want one", key, len(got))
		}
	}
	return Binding{Host: v[0], Strip: v[1], Answer: v[2], Slot: v[3], Source: v[4], Header: v[5], Scheme: v[6], DLP: v[7], DLPLarge: v[8], DLPMax: v[9]}, nil
}

// Validate reports a binding no translation should produce: ext_proc
// refuses such a request (fail closed) rather than guess.
func (b Binding) Validate() error {
	switch {
	case b.DLP != "" && b.DLP != string(config.DLPBlock) && b.DLP != string(config.DLPLog):
		return fmt.Errorf("unknown dlp mode %q", b.DLP)
	case b.DLP == "" && b.DLPLarge != "":
		return fmt.Errorf("dlp large-body action %q with dlp off", b.DLPLarge)
	case b.DLP != "" && b.DLPLarge != string(config.LargeBodyBlock) && b.DLPLarge != string(config.LargeBodyPass):
		return fmt.Errorf("unknown dlp large-body action %q", b.DLPLarge)
	case b.DLP == "" && b.DLPMax != "":
		return fmt.Errorf("dlp body limit %q with dlp off", b.DLPMax)
	case b.DLP != "":
		if n, err := strconv.ParseInt(b.DLPMax, 10, 64); err != nil || n <= 0 || n > config.MaxDLPMaxBody {
			return fmt.Errorf("dlp body limit %q is not a size in 1..%d", b.DLPMax, config.MaxDLPMaxBody)
		}
	}
	switch {
	case b.Slot == "" && b.Answer != "":
		// An answer is made from a slot's credential; without one,
		// forwarding would hand the request to the upstream instead.
		return fmt.Errorf("answer %q names no slot", b.Answer)
	case b.Slot == "":
		return nil
	case b.Answer != "" && b.Answer != config.AnswerCodexRefresh:
		return fmt.Errorf("unknown answer %q for slot %s", b.Answer, b.Slot)
	case b.Answer != "" && (b.Header != "" || b.Scheme != ""):
		return fmt.Errorf("slot %s is both answered and injected", b.Slot)
	case b.Answer != "":
		return nil
	case b.Header != "" && b.Scheme != "":
		return fmt.Errorf("slot %s has both a scheme and a header", b.Slot)
	case b.Header == "" && !KnownScheme(b.Scheme):
		return fmt.Errorf("unknown auth scheme %q for slot %s", b.Scheme, b.Slot)
	}
	return nil
}

// KnownScheme accepts exactly the schemes config admits; anything else is
// a translation bug and must not reach an upstream as an Authorization
// header.
func KnownScheme(s string) bool {
	return s == "Bearer" || s == "token"
}

// JoinStrip is the Strip field for a list of header names.
func JoinStrip(names []string) string { return strings.Join(names, ",") }

// Request headers ext_proc decides on. Envoy sends only these (the ext_proc
// filter's forward_rules, from ForwardedHeaders): every header sent is
// serialised by Envoy and parsed by ext_proc, on every request. The
// credentials to strip need not be sent; they are removed by name.
const (
	HeaderMethod           = ":method"
	HeaderPath             = ":path"
	HeaderAnthropicVersion = "anthropic-version"
	HeaderChatGPTAccount   = "chatgpt-account-id"
	EnvoyHeaderPrefix      = "x-envoy-"
)

// MethodOverrideHeaders make some upstreams (Rails, Express's
// method-override, Google APIs) act as another method than the request's:
// a route allowing only GET would forward a GET that deletes. ext_proc
// removes them from every request it forwards.
var MethodOverrideHeaders = []string{"x-http-method-override", "x-method-override", "x-http-method"}

// ForwardedHeaders are the names and name prefixes of the request headers
// ext_proc decides on. Any other header Envoy sends is ignored.
func ForwardedHeaders() (names, prefixes []string) {
	names = append([]string{HeaderMethod, HeaderPath, HeaderAnthropicVersion, HeaderChatGPTAccount}, MethodOverrideHeaders...)
	return names, []string{EnvoyHeaderPrefix}
}

// CredentialLogName names the access log Envoy streams to the ext_proc
// server: upstream answers that refuse an injected credential (Envoy
// filters on the status).
const CredentialLogName = "egressgate-credential"

// Custom tags the credential access log puts on every entry of a
// credentialed host's listener, naming the slot the route injects. They
// come from the listener, not the request, so an agent cannot forge them.
const (
	TagSlot   = "egressgate.slot"
	TagHost   = "egressgate.host"
	TagSource = "egressgate.source"
)
