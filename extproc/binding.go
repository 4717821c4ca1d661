package extproc

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/grpc/metadata"

	"github.com/egressgate/egressgate/config"
)

// gRPC initial metadata keys carrying the route binding. Our xDS translation
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
)

// binding is what the matched route asks of one request.
type binding struct {
	host   string // display only
	slot   string // "" when the route injects nothing
	scheme string // with header "", the Authorization scheme
	header string // when set, the header carrying the raw value
	source string // the slot's expected source; "" skips the check
	answer string // when set, egressgate answers instead of the upstream
	strip  []string
}

// bindingFromContext reads the route binding from the stream's initial
// metadata. An error means Envoy was configured wrongly; the caller refuses
// the request rather than guess.
func bindingFromContext(ctx context.Context) (binding, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	host, err := single(md, MetadataHost)
	if err != nil {
		return binding{}, err
	}
	b := binding{host: host}
	strip, err := single(md, MetadataStrip)
	if err != nil {
		return b, err
	}
	b.strip = stripList(strip)
	if b.answer, err = single(md, MetadataAnswer); err != nil {
		return b, err
	}
	if b.slot, err = single(md, MetadataSlot); err != nil {
		return b, err
	}
	if b.slot == "" {
		if b.answer != "" {
			// An answer is made from a slot's credential; without one,
			// forwarding would hand the request to the upstream instead.
			return b, fmt.Errorf("answer %q names no slot", b.answer)
		}
		return b, nil
	}
	if b.scheme, err = single(md, MetadataScheme); err != nil {
		return b, err
	}
	if b.header, err = single(md, MetadataHeader); err != nil {
		return b, err
	}
	if b.source, err = single(md, MetadataSource); err != nil {
		return b, err
	}
	switch {
	case b.answer != "" && b.answer != config.AnswerCodexRefresh:
		return b, fmt.Errorf("unknown answer %q for slot %s", b.answer, b.slot)
	case b.answer != "" && (b.header != "" || b.scheme != ""):
		return b, fmt.Errorf("slot %s is both answered and injected", b.slot)
	case b.answer != "":
		return b, nil
	case b.header != "" && b.scheme != "":
		return b, fmt.Errorf("slot %s has both a scheme and a header", b.slot)
	case b.header == "" && !knownScheme(b.scheme):
		return b, fmt.Errorf("unknown auth scheme %q for slot %s", b.scheme, b.slot)
	}
	return b, nil
}

// stripList is the route's strip list, always with the two Authorization
// headers: they are removed even from a route whose binding lacks a list.
func stripList(csv string) []string {
	out := []string{headerAuthorization, headerProxyAuthorization}
	for _, h := range strings.Split(csv, ",") {
		if h = strings.TrimSpace(strings.ToLower(h)); h != "" && !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// single returns the one value of key, or "" when absent. Repeated values
// are an error: two slots on one route would leave us choosing a credential.
func single(md metadata.MD, key string) (string, error) {
	vals := md.Get(key)
	switch len(vals) {
	case 0:
		return "", nil
	case 1:
		return vals[0], nil
	default:
		return "", fmt.Errorf("metadata %s has %d values, want one", key, len(vals))
	}
}

// knownScheme accepts exactly the schemes config admits; anything else is a
// translation bug and must not reach an upstream as an Authorization header.
func knownScheme(s string) bool {
	return s == "Bearer" || s == "token"
}

// label names the route in messages; host metadata is optional.
func (b binding) label() string {
	if b.host == "" {
		return "this route"
	}
	return b.host
}
