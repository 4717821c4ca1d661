package extproc

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

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

// bindingKey is a stream's binding metadata as Envoy sent it: one value
// per key, "" for an absent one.
type bindingKey struct {
	host, strip, answer, slot, scheme, header, source string
}

// bindingKeyFrom reads the binding metadata of a stream. Repeated values
// are an error: two slots on one route would leave us choosing a
// credential.
func bindingKeyFrom(ctx context.Context) (k bindingKey, err error) {
	one := func(key string) string {
		// ValueFromIncomingContext, unlike FromIncomingContext, does not
		// copy the stream's whole metadata: this runs on every request.
		switch vals := metadata.ValueFromIncomingContext(ctx, key); len(vals) {
		case 0:
			return ""
		case 1:
			return vals[0]
		default:
			if err == nil {
				err = fmt.Errorf("metadata %s has %d values, want one", key, len(vals))
			}
			return ""
		}
	}
	k = bindingKey{
		host: one(MetadataHost), strip: one(MetadataStrip), answer: one(MetadataAnswer), slot: one(MetadataSlot),
		scheme: one(MetadataScheme), header: one(MetadataHeader), source: one(MetadataSource),
	}
	return k, err
}

// parse checks a binding and makes its strip list. It depends on k alone,
// so its result can be kept for the next stream with the same metadata.
func (k bindingKey) parse() (binding, error) {
	b := binding{host: k.host, strip: stripList(k.strip), answer: k.answer, slot: k.slot}
	if b.slot == "" {
		if b.answer != "" {
			// An answer is made from a slot's credential; without one,
			// forwarding would hand the request to the upstream instead.
			return b, fmt.Errorf("answer %q names no slot", b.answer)
		}
		return b, nil
	}
	b.scheme, b.header, b.source = k.scheme, k.header, k.source
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

// parsedBinding is a bindingKey's parse result.
type parsedBinding struct {
	b   binding
	err error
}

// bindingCache keeps parsed bindings by their metadata. Envoy sends the
// same few bindings (one per route) on every stream; parsing the strip
// list each time was a tenth of a request's Go time. Entries are never
// changed once stored, and the strip lists they hold are shared: callers
// clone before appending. The metadata comes from egressgate's own route
// configuration, after the caller key was checked, so its variety is
// bounded by the routes; the cap only guards against a bug.
type bindingCache struct {
	entries sync.Map // bindingKey -> parsedBinding
	size    atomic.Int32
}

const bindingCacheMax = 4096

// get reads the route binding from the stream's initial metadata. An
// error means Envoy was configured wrongly; the caller refuses the
// request rather than guess.
func (c *bindingCache) get(ctx context.Context) (binding, error) {
	k, err := bindingKeyFrom(ctx)
	if err != nil {
		return binding{host: k.host}, err
	}
	if v, ok := c.entries.Load(k); ok {
		p := v.(parsedBinding)
		return p.b, p.err
	}
	b, err := k.parse()
	if c.size.Load() < bindingCacheMax {
		if _, loaded := c.entries.LoadOrStore(k, parsedBinding{b, err}); !loaded {
			c.size.Add(1)
		}
	}
	return b, err
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
