package extproc

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"sync"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/dlp"
	"github.com/egressgate/egressgate/extprocapi"
	"github.com/egressgate/egressgate/internal/tokengen"
)

// gitHubToken makes a ghp_ token with a valid checksum from 30 characters.
func gitHubToken(body30 string) string { return "ghp_" + body30 + tokengen.Base62Checksum(body30) }

const canaryValue = "AKIAQ3CANARY7TESTXYZ" // 20 chars, base32 alphabet

// dlpHarness is a server holding one injected slot (tokenA), a canary and
// an extra pattern, with its detections recorded.
type dlpHarness struct {
	*harness
	mu    sync.Mutex
	found []Detection
}

func newDLPHarness(t *testing.T, rules config.DLPRules) *dlpHarness {
	d := &dlpHarness{}
	d.harness = newHarnessWith(t, Options{OnDetection: func(det Detection) {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.found = append(d.found, det)
	}})
	d.srv.SetSlots([]config.Slot{envSlot(tokenA + "-long-enough")})
	d.srv.SetCanaries([]dlp.Named{{Name: "aws-access-key-id@run1", Value: config.NewSecret(canaryValue)}})
	d.srv.SetDLPRules(rules)
	return d
}

func (d *dlpHarness) detections() []Detection {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Detection(nil), d.found...)
}

// dlpRoute is a scanned route injecting EGRESS_TOKEN_1.
func dlpRoute(mode, large string) []string {
	return append(route("api.example.com", "EGRESS_TOKEN_1", "Bearer"),
		extprocapi.MetadataDLP, mode, extprocapi.MetadataDLPLarge, large, extprocapi.MetadataDLPMax, "4096")
}

// post runs a request with a body through one stream, as Envoy does on a
// scanned route: headers, then (if the headers were let through) the body
// in one buffered message. It returns the last answer.
func post(t *testing.T, h *harness, md []string, path string, body []byte, endOfStream bool, headers ...string) *extprocv3.ProcessingResponse {
	t.Helper()
	stream := h.open(t, md)
	hv := func(k, v string) *corev3.HeaderValue { return &corev3.HeaderValue{Key: k, RawValue: []byte(v)} }
	hs := []*corev3.HeaderValue{hv(":method", "POST"), hv(":path", path), hv(":authority", "api.example.com"),
		hv("authorization", "Bearer "+canaryValue)} // stripped, so never a leak
	for i := 0; i+1 < len(headers); i += 2 {
		hs = append(hs, hv(headers[i], headers[i+1]))
	}
	resp := send(t, stream, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
		RequestHeaders: &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: hs}},
	}})
	if resp.GetImmediateResponse() != nil || body == nil {
		return resp
	}
	return send(t, stream, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
		RequestBody: &extprocv3.HttpBody{Body: body, EndOfStream: endOfStream},
	}})
}

func dlpFindings(resp *extprocv3.ProcessingResponse) string {
	return resp.GetDynamicMetadata().GetFields()[extprocapi.DLPMetadataNamespace].GetStructValue().GetFields()[extprocapi.DLPFindingsKey].GetStringValue()
}

func requireContinued(t *testing.T, resp *extprocv3.ProcessingResponse) {
	t.Helper()
	require.Nil(t, resp.GetImmediateResponse(), "refused: %s", resp.GetImmediateResponse().GetBody())
}

func TestDLPRefusesSecretsInTheBody(t *testing.T) {
	gh := gitHubToken("abcdefghijklmnopqrstuvwxyz0123")
	secret := tokenA + "-long-enough"
	for _, tt := range []struct {
		name, mode, body, kind, name2 string
	}{
		{"known secret", "block", `{"input":"` + secret + `"}`, dlp.KindKnownSecret, "EGRESS_TOKEN_1"},
		{"known secret in log mode", "log", `{"input":"` + base64.StdEncoding.EncodeToString([]byte(secret)) + `"}`, dlp.KindKnownSecret, "EGRESS_TOKEN_1"},
		{"canary in log mode", "log", "key=" + url.QueryEscape(canaryValue), dlp.KindCanary, "aws-access-key-id@run1"},
		{"github token", "block", `{"text":"my token is ` + gh + `"}`, dlp.KindGitHubToken, ""},
		{"extra pattern", "block", "codename BLUEHERON-7731 leaked", dlp.KindPattern, "codename"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newDLPHarness(t, config.DLPRules{Patterns: []config.DLPPattern{{Name: "codename", Literal: "BLUEHERON-7731"}}})
			resp := post(t, h.harness, dlpRoute(tt.mode, "block"), "/v1/things", []byte(tt.body), true)
			body := requireDenied(t, resp, 403, codeSecret, "api.example.com", tt.kind, "body")
			assert.NotContains(t, body, secret)
			assert.NotContains(t, body, canaryValue)
			assert.NotContains(t, body, gh)
			dets := h.detections()
			require.Len(t, dets, 1)
			assert.Equal(t, tt.kind, dets[0].Kind)
			assert.Equal(t, tt.name2, dets[0].Name)
			assert.Equal(t, "block", dets[0].Action)
			assert.Contains(t, body, dets[0].Fingerprint)
			assert.Equal(t, strings.Join([]string{"body", tt.kind, tt.name2, dets[0].Fingerprint, "block"}, ":"), dlpFindings(resp))
			if tt.kind == dlp.KindPattern || tt.kind == dlp.KindGitHubToken {
				assert.Contains(t, body, "dlp.allow")
			}
			assert.NotContains(t, h.logs.String(), secret)
			assert.NotContains(t, h.logs.String(), canaryValue)
		})
	}
}

func TestDLPLogModeForwardsFormatsAndRecordsThem(t *testing.T) {
	h := newDLPHarness(t, config.DLPRules{})
	gh := gitHubToken("ZYXWVUTSRQPONMLKJIHGFEDCBA9876")
	resp := post(t, h.harness, dlpRoute("log", "block"), "/v1/x", []byte("token "+gh), true)
	requireContinued(t, resp)
	require.NotNil(t, resp.GetRequestBody())
	dets := h.detections()
	require.Len(t, dets, 1)
	assert.Equal(t, "log", dets[0].Action)
	assert.Equal(t, "body:github-token::"+dets[0].Fingerprint+":log", dlpFindings(resp))
}

func TestDLPAllowListLetsAFingerprintThrough(t *testing.T) {
	gh := gitHubToken("abcdefghijklmnopqrstuvwxyz0123")
	fp := dlp.Fingerprint([]byte(gh))
	h := newDLPHarness(t, config.DLPRules{Allow: []string{fp, dlp.Fingerprint([]byte(canaryValue))}})
	resp := post(t, h.harness, dlpRoute("block", "block"), "/v1/x", []byte("token "+gh), true)
	requireContinued(t, resp)
	assert.Empty(t, h.detections())
	// A canary is never excused: allowing it would let the planted
	// credential out.
	resp = post(t, h.harness, dlpRoute("block", "block"), "/v1/x", []byte(canaryValue), true)
	requireDenied(t, resp, 403, codeSecret, "canary")
}

func TestDLPScansPathAndHeadersButNotStrippedOnes(t *testing.T) {
	h := newDLPHarness(t, config.DLPRules{})
	// The canary in Authorization (post sends it there) is removed, so
	// a clean request goes through, with the host credential injected.
	resp := post(t, h.harness, dlpRoute("block", "block"), "/v1/x", nil, true)
	requireInjected(t, resp, "Bearer "+tokenA+"-long-enough")
	assert.Empty(t, h.detections())

	resp = post(t, h.harness, dlpRoute("block", "block"), "/v1/x?k="+url.QueryEscape(canaryValue), nil, true)
	requireDenied(t, resp, 403, codeSecret, "its path carries")
	resp = post(t, h.harness, dlpRoute("block", "block"), "/v1/x", nil, true, "x-debug", "k="+canaryValue)
	requireDenied(t, resp, 403, codeSecret, "its header carries")
}

func TestDLPLargeBodies(t *testing.T) {
	h := newDLPHarness(t, config.DLPRules{})
	part := bytes.Repeat([]byte("a harmless line of prose\n"), 100) // under 4 KiB
	// Envoy may send more than the route's limit (the listener's own limit
	// can be higher): past the limit, the large-body action decides.
	whole := bytes.Repeat(part, 2)
	resp := post(t, h.harness, dlpRoute("block", "block"), "/v1/x", whole, true)
	requireDenied(t, resp, 403, codeTooLarge, "longer than the 4096 bytes")
	resp = post(t, h.harness, dlpRoute("block", "pass"), "/v1/x", append(whole, canaryValue...), true)
	requireContinued(t, resp)

	// A body shorter than the limit without end_of_stream is whole, its
	// trailers to follow.
	resp = post(t, h.harness, dlpRoute("block", "block"), "/v1/x", part, false)
	requireContinued(t, resp)
	limit := bytes.Repeat([]byte("x"), 4096)
	resp = post(t, h.harness, dlpRoute("block", "block"), "/v1/x", limit, false)
	requireDenied(t, resp, 403, codeTooLarge, "longer than")

	resp = post(t, h.harness, dlpRoute("block", "pass"), "/v1/x", limit, false)
	requireContinued(t, resp)
	assert.Equal(t, "true", resp.GetDynamicMetadata().GetFields()[extprocapi.DLPMetadataNamespace].GetStructValue().GetFields()[extprocapi.DLPUnscannedKey].GetStringValue())

	// What was scanned still counts when the rest would pass.
	resp = post(t, h.harness, dlpRoute("block", "pass"), "/v1/x", append(bytes.Repeat([]byte("x"), 4000), canaryValue...), false)
	requireDenied(t, resp, 403, codeSecret, "canary")
}

func TestDLPCompressedBodies(t *testing.T) {
	h := newDLPHarness(t, config.DLPRules{})
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write([]byte(`{"prompt":"` + canaryValue + `"}`))
	require.NoError(t, zw.Close())
	resp := post(t, h.harness, dlpRoute("block", "block"), "/v1/x", buf.Bytes(), true, "content-encoding", "gzip")
	requireDenied(t, resp, 403, codeSecret, "canary")
	assert.Equal(t, "gzip", h.detections()[0].Encoding)

	resp = post(t, h.harness, dlpRoute("block", "block"), "/v1/x", []byte("xx"), true, "content-encoding", "zstd")
	requireDenied(t, resp, 403, codeUnreadable, "could not be inspected")
	// Log mode too: an unread body could hold a known secret or a canary.
	resp = post(t, h.harness, dlpRoute("log", "block"), "/v1/x", []byte("xx"), true, "content-encoding", "compress")
	requireDenied(t, resp, 403, codeUnreadable, `unsupported content encoding "compress"`)
}

func TestDLPOffRouteIsUnchanged(t *testing.T) {
	h := newDLPHarness(t, config.DLPRules{})
	resp := post(t, h.harness, route("api.example.com", "EGRESS_TOKEN_1", "Bearer"), "/v1/x?k="+canaryValue, nil, true)
	requireInjected(t, resp, "Bearer "+tokenA+"-long-enough")
	assert.Nil(t, resp.GetDynamicMetadata())
}

// wsFrame is one masked client frame.
func wsFrame(opcode byte, fin bool, payload []byte) []byte {
	b0 := opcode
	if fin {
		b0 |= 0x80
	}
	f := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		f = append(f, 0x80|byte(n))
	case n < 1<<16:
		f = append(f, 0x80|126, byte(n>>8), byte(n))
	default:
		f = append(f, 0x80|127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	mask := [4]byte{0x12, 0x34, 0x56, 0x78}
	f = append(f, mask[:]...)
	for i, c := range payload {
		f = append(f, c^mask[i%4])
	}
	return f
}

func TestDLPWebSocketFrames(t *testing.T) {
	h := newDLPHarness(t, config.DLPRules{})
	stream := h.open(t, dlpRoute("block", "block"))
	hv := func(k, v string) *corev3.HeaderValue { return &corev3.HeaderValue{Key: k, RawValue: []byte(v)} }
	resp := send(t, stream, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
		RequestHeaders: &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
			hv(":method", "GET"), hv(":path", "/ws"), hv("upgrade", "websocket"), hv("connection", "upgrade"),
			hv("sec-websocket-extensions", "permessage-deflate"),
		}}},
	}})
	assert.Contains(t, mutation(t, resp).GetRemoveHeaders(), "sec-websocket-extensions")

	// The canary split over two fragments of one message, and the frames
	// cut across chunks at odd places.
	frames := append(wsFrame(1, true, []byte(`{"type":"hello"}`)), wsFrame(1, false, []byte(`{"prompt":"`+canaryValue[:9]))...)
	frames = append(frames, wsFrame(0, true, []byte(canaryValue[9:]+`"}`))...)
	var last *extprocv3.ProcessingResponse
	for chunk := range slicesChunk(frames, 7) {
		last = send(t, stream, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
			RequestBody: &extprocv3.HttpBody{Body: chunk},
		}})
		if last.GetImmediateResponse() != nil {
			break
		}
		require.NotNil(t, last.GetRequestBody())
	}
	requireDenied(t, last, 403, codeSecret, "its websocket carries", "canary")
}

func slicesChunk(b []byte, n int) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(b) > 0 {
			k := min(n, len(b))
			if !yield(b[:k]) {
				return
			}
			b = b[k:]
		}
	}
}

// A credential the egress holds besides the slots (the host's Codex refresh
// token) is a known secret too.
func TestDLPHeldSecrets(t *testing.T) {
	h := newDLPHarness(t, config.DLPRules{})
	const refresh = "rt-host-refresh-0a9b8c7d6e5f"
	h.srv.SetHeldSecrets([]dlp.Named{{Name: "codex-refresh-token", Value: config.NewSecret(refresh)}})
	resp := post(t, h.harness, dlpRoute("log", "block"), "/v1/x", []byte(`{"refresh_token":"`+refresh+`"}`), true)
	body := requireDenied(t, resp, 403, codeSecret, "known-secret codex-refresh-token")
	assert.NotContains(t, body, refresh)
}

// Claude Code words a 403 as an authentication failure: a refused secret
// reaches it as a 400 invalid_request_error in Anthropic's error shape.
func TestDLPRefusalForAnthropicClients(t *testing.T) {
	h := newDLPHarness(t, config.DLPRules{})
	resp := post(t, h.harness, dlpRoute("block", "block"), "/v1/messages", []byte(canaryValue), true, "anthropic-version", "2023-06-01")
	ir := resp.GetImmediateResponse()
	require.NotNil(t, ir)
	assert.EqualValues(t, 400, ir.GetStatus().GetCode())
	var e anthropicError
	require.NoError(t, json.Unmarshal(ir.GetBody(), &e))
	assert.Equal(t, "invalid_request_error", e.Error.Type)
	assert.Contains(t, e.Error.Message, "canary")
	assert.Equal(t, "false", header(resp, "x-should-retry"))
}
