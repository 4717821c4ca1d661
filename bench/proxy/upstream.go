package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// benchHost is the host every system intercepts. It never resolves: each
// system is told the upstream's loopback address its own way (egressgate's
// route upstream.address, a static cluster in envoy-alone, the addon's
// server_connect hook in mitmproxy, a dialer in direct).
const benchHost = "api.bench.test"

// body is the upstream's whole answer: 32 bytes.
const body = "egressgate proxy bench: 32 bytes"

// Headers the agent sends with its own (fake) credentials; each must be
// gone upstream, replaced by the host token in Authorization.
const agentFake = "agent-fake"

// upstream is a loopback HTTPS server (HTTP/1.1 and h2) standing in for
// the real API. It checks every request: Authorization must be the host
// token and nothing of the agent's own credentials may arrive. A request
// that fails the check is answered 403, so it counts as an error too and
// can never make a misconfigured proxy look fast.
type upstream struct {
	srv   *http.Server
	addr  string // 127.0.0.1:PORT
	want  string // "Bearer " + host token
	total atomic.Int64
	wrong atomic.Int64
}

func startUpstream(cert tls.Certificate, hostToken string) (*upstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	u := &upstream{addr: ln.Addr().String(), want: "Bearer " + hostToken}
	u.srv = &http.Server{
		Handler:           http.HandlerFunc(u.serve),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}},
		ReadHeaderTimeout: 10 * time.Second,
		// The proxies' own logs say what went wrong; the server's
		// "TLS handshake error" lines as clients go away would only
		// interleave with the report.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go func() {
		if err := u.srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "bench upstream stopped:", err)
		}
	}()
	return u, nil
}

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	u.total.Add(1)
	if !u.headersRight(r.Header) {
		u.wrong.Add(1)
		http.Error(w, "wrong credential headers", http.StatusForbidden)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write([]byte(body))
}

// headersRight holds when exactly one Authorization arrived and it is the
// injected one, and none of the agent's other credential headers did.
func (u *upstream) headersRight(h http.Header) bool {
	auth := h.Values("Authorization")
	return len(auth) == 1 && auth[0] == u.want &&
		len(h.Values("X-Api-Key")) == 0 && len(h.Values("Proxy-Authorization")) == 0
}

func (u *upstream) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = u.srv.Shutdown(ctx)
}
