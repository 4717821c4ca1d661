package integration

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
)

// seenRequest is what an upstream stand-in recorded of one request.
type seenRequest struct {
	Host   string
	Method string
	Path   string
	Proto  string
	Header http.Header
}

// upstream is a loopback TLS server standing in for the real hosts
// (chatgpt.com and friends). It speaks HTTP/2 and HTTP/1.1 and records
// every request it receives.
type upstream struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []seenRequest
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

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.seen = append(u.seen, seenRequest{Host: r.Host, Method: r.Method, Path: r.URL.Path, Proto: r.Proto, Header: r.Header.Clone()})
	u.mu.Unlock()
	if websocket.IsWebSocketUpgrade(r) {
		u.echoWebSocket(w, r)
		return
	}
	if r.URL.Path != "/backend-api/codex/responses" {
		fmt.Fprintf(w, "ok %s %s\n", r.Host, r.URL.Path)
		return
	}
	// A Codex-like server-sent event stream, flushed event by event so
	// that buffering anywhere on the path would show.
	w.Header().Set("Content-Type", "text/event-stream")
	flusher := w.(http.Flusher)
	for _, e := range sseEvents {
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e, sseData[e])
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
