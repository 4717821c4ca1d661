package extproc

import (
	"context"
	"fmt"

	"google.golang.org/grpc/metadata"
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
)

// binding is what the matched route asks of one request.
type binding struct {
	host   string // display only
	slot   string // "" when the route injects nothing
	scheme string // valid when slot != ""
	source string // the slot's expected source; "" skips the check
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
	if b.slot, err = single(md, MetadataSlot); err != nil || b.slot == "" {
		return b, err
	}
	if b.scheme, err = single(md, MetadataScheme); err != nil {
		return b, err
	}
	if b.source, err = single(md, MetadataSource); err != nil {
		return b, err
	}
	if !knownScheme(b.scheme) {
		return b, fmt.Errorf("unknown auth scheme %q for slot %s", b.scheme, b.slot)
	}
	return b, nil
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
