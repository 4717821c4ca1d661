package extproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/extprocapi"
)

func TestStripOnRouteWithoutSlot(t *testing.T) {
	h := newHarness(t)
	h.srv.SetSlots([]config.Slot{codexSlot(tokenA, time.Time{})})

	// The request's Host is chatgpt.com, a credentialed host; the route
	// Envoy matched declares no slot, and only the route counts.
	requireStripped(t, h.headers(t, route("pypi.org", "", "")))
	requireStripped(t, h.headers(t, nil))
}

func TestInject(t *testing.T) {
	tests := []struct {
		name   string
		slot   config.Slot
		scheme string
		want   string
	}{
		{"bearer", codexSlot(tokenA, t0.Add(time.Hour)), "Bearer", "Bearer " + tokenA},
		{"token", envSlot(tokenB), "token", "token " + tokenB},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.srv.SetSlots([]config.Slot{tt.slot})
			requireInjected(t, h.headers(t, route("api.example", tt.slot.Name, tt.scheme)), tt.want)
		})
	}
}

// TestDenyUnusableSlot: a credential that cannot be sent is refused with
// what is wrong and the fix, as a 403 a client shows rather than retries,
// and never with a host path or a value.
func TestDenyUnusableSlot(t *testing.T) {
	codexFix := "run `codex login --device-auth` on the host"
	loggedOut := codexSlot("", time.Time{})
	loggedOut.Problem = "/root/.codex/auth.json: not found; run 'codex login --device-auth' on the host"
	tests := []struct {
		name   string
		slots  []config.Slot
		status int
		code   string
		want   []string
	}{
		{"missing", nil, 503, codeMissing,
			[]string{"api.example.test", "EGRESS_TOKEN_0", "egressgate status"}},
		{"empty", []config.Slot{codexSlot("", time.Time{})}, 403, codeEmpty,
			[]string{"api.example.test", "the host's Codex login (EGRESS_TOKEN_0) is not set", codexFix}},
		{"logged out", []config.Slot{loggedOut}, 403, codeLoggedOut,
			[]string{"api.example.test", "the host's Codex login is gone", "logged out", codexFix}},
		{"expired", []config.Slot{codexSlot(tokenA, t0)}, 403, codeExpired,
			[]string{"api.example.test", "the host's Codex login (EGRESS_TOKEN_0) expired at 2026-03-01T12:00:00Z", codexFix}},
		{"expired long ago", []config.Slot{codexSlot(tokenA, t0.Add(-time.Hour))}, 403, codeExpired,
			[]string{"expired at 2026-03-01T11:00:00Z", codexFix}},
		{"not a header value", []config.Slot{codexSlot(tokenA+"\r\nx-evil: 1", time.Time{})}, 403, codeInvalid,
			[]string{"EGRESS_TOKEN_0", codexFix}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.srv.SetSlots(tt.slots)
			resp := h.headers(t, route("api.example.test", "EGRESS_TOKEN_0", "Bearer"))
			body := requireDenied(t, resp, tt.status, tt.code, tt.want...)
			require.NotContains(t, body, tokenA)
			require.NotContains(t, body, agentToken)
			require.NotContains(t, body, "/root/.codex", "no host path reaches the agent")
			require.LessOrEqual(t, strings.Count(body, "\n"), 2, "one or two lines")
			if tt.status == 403 {
				require.Equal(t, "false", header(resp, "x-should-retry"), "SDKs that honour it must not retry")
			}
		})
	}
}

func TestDenyEnvSourceNamesFix(t *testing.T) {
	h := newHarness(t)
	h.srv.SetSlots([]config.Slot{envSlot("")})
	requireDenied(t, h.headers(t, route("api.github.com", "EGRESS_TOKEN_1", "token")), 403, codeEmpty,
		"api.github.com", "EGRESS_TOKEN_1", "the host variable GITHUB_TOKEN", "set GITHUB_TOKEN in egressgate's environment")
}

func TestNoSlotsBeforeFirstSetSlots(t *testing.T) {
	h := newHarness(t)
	requireDenied(t, h.headers(t, route("chatgpt.com", "EGRESS_TOKEN_0", "Bearer")), 503, codeMissing)
	requireStripped(t, h.headers(t, route("pypi.org", "", "")))
}

func TestMisconfiguredBindingFailsClosed(t *testing.T) {
	tests := []struct {
		name string
		md   []string
		want string
	}{
		{"unknown scheme", route("chatgpt.com", "EGRESS_TOKEN_0", "Basic"), `unknown auth scheme "Basic"`},
		{"wrong case scheme", route("chatgpt.com", "EGRESS_TOKEN_0", "bearer"), `unknown auth scheme "bearer"`},
		{"slot without scheme", []string{extprocapi.MetadataHost, "chatgpt.com", extprocapi.MetadataSlot, "EGRESS_TOKEN_0"}, `unknown auth scheme ""`},
		{"two slots", append(route("chatgpt.com", "EGRESS_TOKEN_0", "Bearer"), extprocapi.MetadataSlot, "EGRESS_TOKEN_1"), "x-egressgate-slot has 2 values"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.srv.SetSlots([]config.Slot{codexSlot(tokenA, time.Time{}), envSlot(tokenB)})
			body := requireDenied(t, h.headers(t, tt.md), 500, codeMisconfigured, "chatgpt.com", tt.want)
			require.NotContains(t, body, tokenA)
			require.NotContains(t, body, tokenB)
		})
	}
}

func TestSetSlotsSwapSeenByNextStream(t *testing.T) {
	h := newHarness(t)
	md := route("chatgpt.com", "EGRESS_TOKEN_0", "Bearer")

	h.srv.SetSlots([]config.Slot{codexSlot(tokenA, time.Time{})})
	requireInjected(t, h.headers(t, md), "Bearer "+tokenA)

	h.srv.SetSlots([]config.Slot{codexSlot(tokenB, time.Time{})})
	requireInjected(t, h.headers(t, md), "Bearer "+tokenB)

	h.srv.SetSlots(nil)
	requireDenied(t, h.headers(t, md), 503, codeMissing)
}

func TestSetSlotsCopiesInput(t *testing.T) {
	h := newHarness(t)
	slots := []config.Slot{codexSlot(tokenA, time.Time{})}
	h.srv.SetSlots(slots)
	slots[0] = codexSlot(tokenB, time.Time{}) // caller reuses its slice
	requireInjected(t, h.headers(t, route("chatgpt.com", "EGRESS_TOKEN_0", "Bearer")), "Bearer "+tokenA)
}

func TestExpiryFollowsClock(t *testing.T) {
	h := newHarness(t)
	md := route("chatgpt.com", "EGRESS_TOKEN_0", "Bearer")
	h.srv.SetSlots([]config.Slot{codexSlot(tokenA, t0.Add(time.Minute))})

	requireInjected(t, h.headers(t, md), "Bearer "+tokenA)
	h.clock.Set(t0.Add(time.Minute))
	requireDenied(t, h.headers(t, md), 400, codeExpired)
}

func TestOtherPhasesContinue(t *testing.T) {
	tests := []struct {
		name string
		req  *extprocv3.ProcessingRequest
		got  func(*extprocv3.ProcessingResponse) bool
	}{
		{"response headers",
			&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{}}},
			func(r *extprocv3.ProcessingResponse) bool { return r.GetResponseHeaders() != nil }},
		{"request body",
			&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{}}},
			func(r *extprocv3.ProcessingResponse) bool { return r.GetRequestBody() != nil }},
		{"response body",
			&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{}}},
			func(r *extprocv3.ProcessingResponse) bool { return r.GetResponseBody() != nil }},
		{"request trailers",
			&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestTrailers{RequestTrailers: &extprocv3.HttpTrailers{}}},
			func(r *extprocv3.ProcessingResponse) bool { return r.GetRequestTrailers() != nil }},
		{"response trailers",
			&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseTrailers{ResponseTrailers: &extprocv3.HttpTrailers{}}},
			func(r *extprocv3.ProcessingResponse) bool { return r.GetResponseTrailers() != nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.srv.SetSlots([]config.Slot{codexSlot(tokenA, time.Time{})})
			stream := h.open(t, route("chatgpt.com", "EGRESS_TOKEN_0", "Bearer"))
			// The headers first, as Envoy would, then the unexpected phase.
			requireInjected(t, send(t, stream, agentRequest()), "Bearer "+tokenA)
			require.True(t, tt.got(send(t, stream, tt.req)), "want the matching continue")
			require.NoError(t, stream.CloseSend())
			_, err := stream.Recv()
			require.ErrorIs(t, err, io.EOF, "stream ends cleanly")
		})
	}
}

func TestMessageWithoutPhaseIsError(t *testing.T) {
	h := newHarness(t)
	stream := h.open(t, nil)
	require.NoError(t, stream.Send(&extprocv3.ProcessingRequest{}))
	_, err := stream.Recv()
	require.Equal(t, codes.InvalidArgument, status.Code(err))
}

func TestStreamClosedWithoutMessages(t *testing.T) {
	h := newHarness(t)
	stream := h.open(t, nil)
	require.NoError(t, stream.CloseSend())
	_, err := stream.Recv()
	require.ErrorIs(t, err, io.EOF)
}

func TestEndOfStream(t *testing.T) {
	live := context.Background()
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, endOfStream(live, io.EOF))
	require.NoError(t, endOfStream(live, status.Error(codes.Canceled, "client went away")))
	require.NoError(t, endOfStream(gone, errors.New("transport closed")))
	require.Equal(t, codes.Internal, status.Code(endOfStream(live, status.Error(codes.Internal, "boom"))))
	require.Equal(t, codes.Unknown, status.Code(endOfStream(live, errors.New("boom"))))
}

func TestLogsNeverContainValues(t *testing.T) {
	h := newHarness(t)
	h.srv.SetSlots([]config.Slot{
		codexSlot(tokenA, t0.Add(-time.Second)), // expired: deny while holding a value
		envSlot(tokenB),
	})
	requireDenied(t, h.headers(t, route("chatgpt.com", "EGRESS_TOKEN_0", "Bearer")), 400, codeExpired)
	requireInjected(t, h.headers(t, route("api.github.com", "EGRESS_TOKEN_1", "token")), "token "+tokenB)
	requireStripped(t, h.headers(t, route("pypi.org", "", "")))
	h.srv.SetSlots([]config.Slot{codexSlot(tokenA+"\n", time.Time{})})
	requireDenied(t, h.headers(t, route("chatgpt.com", "EGRESS_TOKEN_0", "Bearer")), 400, codeInvalid)

	logs := h.logs.String()
	for _, want := range []string{
		`"level":"WARN"`, `"action":"deny"`, `"reason":"egressgate_credential_expired"`,
		`"level":"DEBUG"`, `"action":"inject"`, `"slot":"EGRESS_TOKEN_1"`, `"host":"api.github.com"`,
		`"action":"strip"`, `"host":"pypi.org"`,
	} {
		require.Contains(t, logs, want)
	}
	for _, secret := range []string{tokenA, tokenB, agentToken} {
		require.NotContains(t, logs, secret)
	}
}

// TestConcurrentSwap runs streams while other goroutines keep swapping
// between two whole tables. Under -race it proves the swap is a clean
// publication; every answer must carry a value from one of the tables.
func TestConcurrentSwap(t *testing.T) {
	h := newHarness(t)
	tables := [2][]config.Slot{
		{codexSlot(tokenA, time.Time{}), envSlot(tokenA)},
		{codexSlot(tokenB, time.Time{}), envSlot(tokenB)},
	}
	h.srv.SetSlots(tables[0])

	stop := make(chan struct{})
	var swappers sync.WaitGroup
	for i := range 4 {
		swappers.Go(func() {
			for n := i; ; n++ {
				select {
				case <-stop:
					return
				default:
					h.srv.SetSlots(tables[n%2])
				}
			}
		})
	}

	var streams sync.WaitGroup
	for i := range 16 {
		streams.Go(func() {
			md := route("chatgpt.com", config.SlotName(i%2), "Bearer")
			for range 20 {
				if err := checkFromOneTable(h.roundTrip(md)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	streams.Wait()
	close(stop)
	swappers.Wait()
}

func checkFromOneTable(resp *extprocv3.ProcessingResponse, err error) error {
	if err != nil {
		return err
	}
	set := resp.GetRequestHeaders().GetResponse().GetHeaderMutation().GetSetHeaders()
	if len(set) != 1 {
		return fmt.Errorf("want one set header, got %v", resp)
	}
	if v := string(set[0].GetHeader().GetRawValue()); v != "Bearer "+tokenA && v != "Bearer "+tokenB {
		return fmt.Errorf("authorization = %q, want a value from one table", v)
	}
	return nil
}

// TestSourceMismatchRefused covers a reload that renumbered slots: Envoy's
// route still expects the Codex login in EGRESS_TOKEN_0, but the table now
// holds GITHUB_TOKEN there. The request must be refused, not given the
// other source's credential.
func TestSourceMismatchRefused(t *testing.T) {
	h := newHarness(t)
	moved := envSlot(tokenB)
	moved.Name = "EGRESS_TOKEN_0"
	h.srv.SetSlots([]config.Slot{moved})
	md := append(route("chatgpt.com", "EGRESS_TOKEN_0", "Bearer"), extprocapi.MetadataSource, codexSlot("", time.Time{}).Source.String())
	body := requireDenied(t, h.headers(t, md), 503, codeMoved, "EGRESS_TOKEN_0", "retry")
	require.NotContains(t, body, tokenB)

	// The same route with the matching source is served.
	h.srv.SetSlots([]config.Slot{codexSlot(tokenA, t0.Add(time.Hour))})
	requireInjected(t, h.headers(t, md), "Bearer "+tokenA)
}

// TestNamedHeaderAndStripList covers a route whose credential travels in
// its own header: the raw value goes there, and every header of the
// bottle's strip list is removed, the injected one excepted.
func TestNamedHeaderAndStripList(t *testing.T) {
	h := newHarness(t)
	h.srv.SetSlots([]config.Slot{envSlot(tokenB)})
	md := []string{extprocapi.MetadataHost, "api.anthropic.com", extprocapi.MetadataSlot, "EGRESS_TOKEN_1", extprocapi.MetadataHeader, "x-api-key",
		extprocapi.MetadataStrip, "authorization,proxy-authorization,x-api-key,x-goog-api-key"}
	m := mutation(t, h.headers(t, md))
	require.Len(t, m.GetSetHeaders(), 1)
	require.Equal(t, "x-api-key", m.GetSetHeaders()[0].GetHeader().GetKey())
	require.Equal(t, tokenB, string(m.GetSetHeaders()[0].GetHeader().GetRawValue()))
	require.ElementsMatch(t, []string{"authorization", "proxy-authorization", "x-goog-api-key"}, m.GetRemoveHeaders())

	// A route with no credential strips the whole list.
	m = mutation(t, h.headers(t, []string{extprocapi.MetadataHost, "pypi.org", extprocapi.MetadataStrip, "authorization,proxy-authorization,x-api-key"}))
	require.ElementsMatch(t, []string{"authorization", "proxy-authorization", "x-api-key"}, m.GetRemoveHeaders())

	// Both a scheme and a header is a broken binding: refused.
	requireDenied(t, h.headers(t, append(md, extprocapi.MetadataScheme, "Bearer")), 500, codeMisconfigured)
}

// TestAgentControlHeadersRemoved: headers that would steer Envoy
// (x-envoy-*: retries, timeouts) or the upstream (method overrides) are
// removed from every forwarded request, with or without a credential;
// ordinary headers are left alone.
func TestAgentControlHeadersRemoved(t *testing.T) {
	h := newHarness(t)
	slot := envSlot(tokenB)
	h.srv.SetSlots([]config.Slot{slot})
	control := []string{
		"X-Envoy-Retry-On", "5xx", "x-envoy-max-retries", "5", "x-envoy-upstream-rq-timeout-ms", "1",
		"X-HTTP-Method-Override", "DELETE", "x-method-override", "DELETE", "x-http-method", "PUT",
	}
	want := []string{"x-envoy-retry-on", "x-envoy-max-retries", "x-envoy-upstream-rq-timeout-ms",
		"x-http-method-override", "x-method-override", "x-http-method"}
	for name, md := range map[string][]string{
		"strip":  route("api.example", "", ""),
		"inject": route("api.example", slot.Name, "Bearer"),
	} {
		t.Run(name, func(t *testing.T) {
			m := mutation(t, h.headersWith(t, md, append(control, "accept", "text/plain", "x-request-id", "agent-id")...))
			assert.Subset(t, m.GetRemoveHeaders(), want)
			assert.NotContains(t, m.GetRemoveHeaders(), "accept")
			assert.NotContains(t, m.GetRemoveHeaders(), "x-request-id")
		})
	}
}

// TestCachedBindingIsNotChangedByARequest: bindings are parsed once per
// route and shared by every stream; one request's control headers must
// not end up in the next request's answer, and a misconfigured binding
// stays refused when it comes again.
func TestCachedBindingIsNotChangedByARequest(t *testing.T) {
	h := newHarness(t)
	slot := envSlot(tokenB)
	h.srv.SetSlots([]config.Slot{slot})
	for name, md := range map[string][]string{
		"strip":  append(route("api.example", "", ""), extprocapi.MetadataStrip, "x-api-key"),
		"inject": append(route("api.example", slot.Name, "Bearer"), extprocapi.MetadataStrip, "x-api-key"),
	} {
		t.Run(name, func(t *testing.T) {
			first := mutation(t, h.headersWith(t, md, "x-envoy-retry-on", "5xx"))
			assert.Contains(t, first.GetRemoveHeaders(), "x-envoy-retry-on")
			for range 2 {
				m := mutation(t, h.headers(t, md))
				assert.NotContains(t, m.GetRemoveHeaders(), "x-envoy-retry-on")
				assert.Contains(t, m.GetRemoveHeaders(), "x-api-key")
			}
		})
	}
	bad := route("chatgpt.com", slot.Name, "Basic")
	for range 2 {
		requireDenied(t, h.headers(t, bad), 500, codeMisconfigured)
	}
}

// TestTrailersStripped: a request's trailers lose the agent's credentials
// and control headers on the same stream as its headers, on a route that
// injects; nothing is injected into them.
func TestTrailersStripped(t *testing.T) {
	h := newHarness(t)
	slot := envSlot(tokenB)
	h.srv.SetSlots([]config.Slot{slot})
	stream := h.open(t, route("api.example", slot.Name, "Bearer"))
	requireInjected(t, send(t, stream, agentRequest()), "Bearer "+tokenB)

	hv := func(k, v string) *corev3.HeaderValue { return &corev3.HeaderValue{Key: k, RawValue: []byte(v)} }
	resp := send(t, stream, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestTrailers{
		RequestTrailers: &extprocv3.HttpTrailers{Trailers: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
			hv("authorization", "Bearer "+agentToken), hv("x-envoy-retry-on", "5xx"), hv("x-agent-own", "kept"),
		}}},
	}})
	m := resp.GetRequestTrailers().GetHeaderMutation()
	require.NotNil(t, m, "a trailers answer with a mutation")
	assert.Subset(t, m.GetRemoveHeaders(), []string{"authorization", "proxy-authorization", "x-envoy-retry-on"})
	assert.NotContains(t, m.GetRemoveHeaders(), "x-agent-own")
	assert.Empty(t, m.GetSetHeaders(), "the host credential goes in the headers only")
}
