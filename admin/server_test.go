package admin

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type testAdmin struct {
	ready atomic.Bool
	srv   *httptest.Server
	m     *Metrics
}

func newTestAdmin(t *testing.T) *testAdmin {
	t.Helper()
	a := &testAdmin{}
	reg := prometheus.NewPedanticRegistry()
	a.m = NewMetrics(reg, demoSlots)
	a.srv = httptest.NewServer(Handler(testStatus, a.ready.Load, reg))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *testAdmin) get(t *testing.T, path string) (int, string, http.Header) {
	t.Helper()
	resp, err := a.srv.Client().Get(a.srv.URL + path)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body), resp.Header
}

func TestHandlerHealthAndReady(t *testing.T) {
	a := newTestAdmin(t)
	code, body, _ := a.get(t, "/healthz")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok\n", body)

	code, body, _ = a.get(t, "/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "not ready\n", body)

	a.ready.Store(true)
	code, body, _ = a.get(t, "/readyz")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ready\n", body)

	code, _, _ = a.get(t, "/nope")
	assert.Equal(t, http.StatusNotFound, code)
}

func TestHandlerStatus(t *testing.T) {
	a := newTestAdmin(t)
	code, body, h := a.get(t, "/status")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "application/json", h.Get("Content-Type"))
	assert.True(t, strings.HasPrefix(body, "{\n  \"mode\""), "indented JSON: %q", body[:min(len(body), 40)])
	var got Status
	require.NoError(t, json.Unmarshal([]byte(body), &got))
	assert.Equal(t, testStatus(), got)
}

func TestHandlerMetrics(t *testing.T) {
	a := newTestAdmin(t)
	a.m.ReloadFailed("demo")
	a.m.ExtProcDecision(ActionStrip)
	code, body, _ := a.get(t, "/metrics")
	require.Equal(t, http.StatusOK, code)
	for _, want := range []string{
		`egressgate_reloads_total{bottle="demo",result="failure"} 1`,
		`egressgate_last_reload_success{bottle="demo"} 0`,
		`egressgate_extproc_requests_total{action="strip"} 1`,
		`egressgate_credential_present{bottle="demo",slot="EGRESS_TOKEN_3",source="env UNSET_TOKEN"} 0`,
		`egressgate_credential_expiry_seconds{bottle="demo",slot="EGRESS_TOKEN_1",source="codex /home/u/.codex/auth.json"}`,
	} {
		assert.Contains(t, body, want)
	}
}

// Invariant 4: no endpoint shows a slot's value.
func TestHandlerNeverShowsToken(t *testing.T) {
	a := newTestAdmin(t)
	a.m.ReloadSucceeded("demo")
	for _, path := range []string{"/status", "/metrics", "/healthz", "/readyz"} {
		_, body, _ := a.get(t, path)
		assert.NotContains(t, body, testToken, path)
	}
}

func TestServeAndShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	h := Handler(testStatus, func() bool { return true }, prometheus.NewRegistry())
	addr, err := Serve(ctx, "127.0.0.1:0", h, nil)
	require.NoError(t, err)
	require.NotContains(t, addr, ":0", "the bound port, not the requested one")

	resp, err := http.Get("http://" + addr + "/healthz")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	cancel()
	assert.Eventually(t, func() bool {
		conn, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			_ = conn.Close()
		}
		return err != nil
	}, 5*time.Second, 20*time.Millisecond, "admin server still listening after ctx ended")
}

func TestServeReportsListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = ln.Close() }()
	_, err = Serve(t.Context(), ln.Addr().String(), http.NotFoundHandler(), nil)
	assert.Error(t, err)
}
