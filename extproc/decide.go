package extproc

import (
	"context"
	"log/slog"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/extprocapi"
)

// requestHeaders decides one request: deny, strip only, or strip and
// inject. Every outcome removes the agent's credentials, either by mutation
// or by never forwarding the request at all (invariant 1).
func (s *Server) requestHeaders(ctx context.Context, b binding, bindErr error, h *extprocv3.HttpHeaders) *extprocv3.ProcessingResponse {
	if bindErr != nil {
		return s.deny(ctx, b, h, misconfigured(b, bindErr))
	}
	if extra := agentControlHeaders(h.GetHeaders()); len(extra) > 0 {
		b.strip = append(slices.Clone(b.strip), extra...)
	}
	if b.Slot == "" {
		s.logger.DebugContext(ctx, "ext_proc request", "host", b.Host, "action", "strip")
		s.observe("strip")
		return stripResponse(b.strip)
	}
	slot, d := s.usableSlot(b)
	switch {
	case b.Answer != "" && (d == nil || d.code == codeRejected):
		// A refresh after the upstream refused the host's credential is
		// Codex recovering from that 401. It gets placeholders, and its
		// retried request the refusal with the reason: Codex would show
		// a refused refresh only as its own "sign in again".
		return s.answerRefresh(ctx, b, slot, h)
	case b.Answer != "" && d.credential:
		return s.refuseRefresh(ctx, b, d)
	case d != nil && d.credential && b.Host == hostChatGPT:
		if r := requestOf(h); r.method == "GET" && pathOnly(r.path) == codexRoutingPath && r.account != "" {
			return s.answerRouting(ctx, b, d, r)
		}
	}
	if d != nil {
		return s.deny(ctx, b, h, d)
	}
	s.logger.DebugContext(ctx, "ext_proc request", "host", b.Host, "slot", b.Slot, "action", "inject")
	s.observe("inject")
	return injectResponse(b, slot.Value)
}

// usableSlot returns the slot the route is bound to, or why it cannot be
// used. The clock is read per request, so a token that expires between
// reloads is refused from that moment on, not from the next reload.
func (s *Server) usableSlot(b binding) (config.Slot, *denial) {
	e, ok := s.lookup(b.Slot)
	slot, now := e.slot, s.now()
	switch {
	case !ok:
		return slot, slotMissing(b)
	case b.Source != "" && slot.Source.String() != b.Source:
		return slot, slotMoved(b, slot)
	case slot.LoggedOut():
		return slot, slotLoggedOut(b, slot)
	case !slot.Present():
		return slot, slotEmpty(b, slot)
	case slot.Expired(now):
		return slot, slotExpired(b, slot)
	case !validHeaderValue(slot.Value.Reveal()):
		return slot, slotInvalid(b, slot)
	}
	if r, ok := s.rejection(e, now); ok {
		return slot, slotRejected(b, slot, r)
	}
	return slot, nil
}

// deny logs a refusal at warn (an operator should act on it) and builds the
// local reply in the shape the agent's client shows (render). Only the
// slot name and reason code are logged.
func (s *Server) deny(ctx context.Context, b binding, h *extprocv3.HttpHeaders, d *denial) *extprocv3.ProcessingResponse {
	resp := render(d, b, requestOf(h))
	s.observe("deny")
	s.logger.LogAttrs(ctx, slog.LevelWarn, "ext_proc request denied",
		slog.String("host", b.Host), slog.String("slot", b.Slot),
		slog.String("action", "deny"), slog.String("reason", d.code),
		slog.Int("status", int(resp.GetImmediateResponse().GetStatus().GetCode())))
	return resp
}

// pathOnly drops the query string.
func pathOnly(p string) string {
	if i := strings.IndexByte(p, '?'); i >= 0 {
		return p[:i]
	}
	return p
}

// validHeaderValue rejects bytes no header value may carry (controls other
// than tab). Envoy would refuse such a mutation, and what it then does with
// the request depends on its mutation rules; refusing here keeps the outcome
// ours: closed, with a reason naming the slot. config should never admit
// such a value, so this is defence in depth.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// headerMap is a request's headers or trailers, as Envoy sends them.
type headerMap interface{ GetHeaders() []*corev3.HeaderValue }

// agentControlHeaders are the headers of h that would steer Envoy or the
// upstream rather than carry the agent's request: x-envoy-* (retries,
// timeouts, the upstream's view of Envoy) and method overrides. They are
// removed from every request that is forwarded.
func agentControlHeaders(h headerMap) []string {
	var out []string
	for _, hv := range h.GetHeaders() {
		name := strings.ToLower(hv.GetKey())
		if (strings.HasPrefix(name, extprocapi.EnvoyHeaderPrefix) || slices.Contains(extprocapi.MethodOverrideHeaders, name)) && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// requestTrailers strips the request's trailers as requestHeaders strips
// its headers: an agent's credential, or a header steering Envoy or the
// upstream, must not reach the upstream in a trailer either. Nothing is
// injected there: the host credential travels in the headers only.
func (s *Server) requestTrailers(ctx context.Context, b binding, t *extprocv3.HttpTrailers) *extprocv3.ProcessingResponse {
	strip := b.strip
	if extra := agentControlHeaders(t.GetTrailers()); len(extra) > 0 {
		strip = append(slices.Clone(strip), extra...)
	}
	s.logger.DebugContext(ctx, "ext_proc request trailers", "host", b.Host, "action", "strip")
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestTrailers{
		RequestTrailers: &extprocv3.TrailersResponse{HeaderMutation: &extprocv3.HeaderMutation{RemoveHeaders: strip}},
	}}
}
