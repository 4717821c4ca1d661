package integration

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/egressgate/egressgate/internal/standin"
)

// seenRequest is what an upstream stand-in recorded of one request.
type seenRequest struct {
	At     time.Time
	Host   string
	Method string
	Path   string
	Proto  string
	Header http.Header
	// Trailer is what arrived after the body (HTTP/2, chunked HTTP/1.1).
	Trailer http.Header
	// Body is the request body's SHA-256, to tell it arrived whole.
	Body [sha256.Size]byte
}

// upstream is a loopback TLS server standing in for the real hosts
// (chatgpt.com and friends). It speaks HTTP/2 and HTTP/1.1 and records
// every request it receives.
type upstream struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []seenRequest
	// revoked are Authorization values the upstream answers 401, as a
	// provider does for a revoked or expired token.
	revoked map[string]bool
	// oauth, when set, answers auth.openai.com/oauth/token.
	oauth *standin.OAuth
}

// sseEvents is what the stand-in streams for a Codex responses call, in
// order; sseData holds each event's payload, shaped like the Responses API
// so that a real Codex CLI completes its turn.
var (
	sseEvents = []string{"response.created", "response.output_item.done", "response.completed"}
	sseData   = map[string]string{
		"response.created":          `{"type":"response.created","response":{"id":"resp_standin"}}`,
		"response.output_item.done": `{"type":"response.output_item.done","item":{"type":"message","role":"assistant","id":"msg_standin","content":[{"type":"output_text","text":"hello from the stand-in"}]}}`,
		"response.completed":        `{"type":"response.completed","response":{"id":"resp_standin","usage":{"input_tokens":1,"input_tokens_details":null,"output_tokens":1,"output_tokens_details":null,"total_tokens":2}}}`,
	}
)

func newUpstream(t testing.TB, pki *upstreamPKI) *upstream {
	t.Helper()
	u := &upstream{}
	u.srv = httptest.NewUnstartedServer(http.HandlerFunc(u.serve))
	u.srv.EnableHTTP2 = true
	u.srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.cert}}
	u.srv.StartTLS()
	t.Cleanup(u.srv.Close)
	return u
}

// revoke makes the upstream answer 401 to requests carrying authz.
func (u *upstream) revoke(authz string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.revoked == nil {
		u.revoked = map[string]bool{}
	}
	u.revoked[authz] = true
}

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	// The trailers arrive only once the body has been read; the body is
	// kept for the handlers below.
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	u.mu.Lock()
	u.seen = append(u.seen, seenRequest{At: time.Now(), Host: r.Host, Method: r.Method, Path: r.URL.Path, Proto: r.Proto, Header: r.Header.Clone(), Trailer: r.Trailer.Clone(), Body: sha256.Sum256(body)})
	revoked := u.revoked[r.Header.Get("Authorization")]
	u.mu.Unlock()
	host, _, _ := strings.Cut(r.Host, ":")
	switch {
	case host == "auth.openai.com" && u.oauth != nil:
		u.oauth.ServeHTTP(w, r)
	case revoked:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintln(w, `{"error":{"message":"Your authentication token has been invalidated.","type":"invalid_request_error","code":"token_invalidated"}}`)
	case host == "chatgpt.com" && r.URL.Path == "/backend-api/codex/responses" && websocket.IsWebSocketUpgrade(r):
		// Codex tries its Responses WebSocket first; 426 sends it to the
		// SSE POST at once and in silence, as a backend without it would.
		http.Error(w, "upgrade not supported here", http.StatusUpgradeRequired)
	case websocket.IsWebSocketUpgrade(r):
		u.echoWebSocket(w, r)
	case host == "chatgpt.com" && r.URL.Path == "/backend-api/wham/accounts/check":
		// Codex's workspace routing discovery: it sends no turn without
		// its account listed here.
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"accounts":[{"id":%q,"workspace_backend_origin":"https://chatgpt.com","account_routing_override":"NO_CONSTRAINT"}]}`+"\n",
			r.Header.Get("chatgpt-account-id"))
	case host == "chatgpt.com" && codexOptional(r.URL.Path):
		// What a Codex turn asks but can do without (models list,
		// plugins, MCP, settings, analytics); answered as a backend
		// without them would, so Codex does not retry them.
		http.NotFound(w, r)
	case host == "api.anthropic.com" && r.URL.Path == "/v1/messages":
		anthropicStream(w)
	case host == "api.anthropic.com" && strings.HasPrefix(r.URL.Path, "/api/"):
		http.NotFound(w, r) // Claude Code's start-up settings: optional
	case r.URL.Path == "/backend-api/codex/responses":
		codexStream(w)
	case strings.HasSuffix(r.URL.Path, "/status-503"):
		http.Error(w, "unavailable for the test", http.StatusServiceUnavailable)
	default:
		fmt.Fprintf(w, "ok %s %s\n", r.Host, r.URL.Path)
	}
}

func codexOptional(path string) bool {
	for _, prefix := range []string{"/backend-api/codex/models", "/backend-api/ps/", "/backend-api/wham/settings/",
		"/backend-api/codex/analytics-events/", "/backend-api/plugins/"} {
		if strings.HasPrefix(path, prefix) {
			return true
		}
	}
	return false
}

// codexStream answers a Codex turn with a Responses API event stream.
func codexStream(w http.ResponseWriter) {
	// Flushed event by event so that buffering anywhere on the path
	// would show.
	w.Header().Set("Content-Type", "text/event-stream")
	flusher := w.(http.Flusher)
	for _, e := range sseEvents {
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e, sseData[e])
		flusher.Flush()
	}
}

// anthropicReply is the text a Claude turn through the stand-in prints.
const anthropicReply = "hello from the anthropic stand-in"

// anthropicStream answers a Claude turn with a Messages API event stream,
// the smallest one Claude Code prints and exits 0 on.
func anthropicStream(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	flusher := w.(http.Flusher)
	events := []struct{ name, data string }{
		{"message_start", `{"type":"message_start","message":{"id":"msg_standin","type":"message","role":"assistant","model":"claude-standin","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":1,"output_tokens":1}}}`},
		{"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"` + anthropicReply + `"}}`},
		{"content_block_stop", `{"type":"content_block_stop","index":0}`},
		{"message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":5}}`},
		{"message_stop", `{"type":"message_stop"}`},
	}
	for _, e := range events {
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.name, e.data)
		flusher.Flush()
	}
}

// addr is the upstream's loopback address, for a route's upstream.address.
func (u *upstream) addr() string { return u.srv.Listener.Addr().String() }

// requests returns a copy of what the upstream has seen so far.
func (u *upstream) requests() []seenRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seenRequest(nil), u.seen...)
}

// echoWebSocket answers every message with "echo: " and the message, until
// the client goes away.
func (u *upstream) echoWebSocket(w http.ResponseWriter, r *http.Request) {
	conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	for {
		kind, msg, err := conn.ReadMessage()
		if err != nil {
			return
		}
		if err := conn.WriteMessage(kind, append([]byte("echo: "), msg...)); err != nil {
			return
		}
	}
}
