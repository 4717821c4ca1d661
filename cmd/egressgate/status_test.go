package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/admin"
	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/hostlogin"
)

const statusTestToken = "tok-should-not-appear"

var statusTestNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func statusFixture() admin.Status {
	slots := []config.Slot{
		{Name: "EGRESS_TOKEN_0", Source: config.Source{Kind: config.SourceEnv, Ref: "GITHUB_TOKEN"}, Value: config.NewSecret(statusTestToken)},
		{Name: "EGRESS_TOKEN_1", Source: config.Source{Kind: config.SourceCodex, Ref: "/home/u/.codex/auth.json"}, Value: config.NewSecret(statusTestToken), Expiry: statusTestNow.Add(42 * time.Minute)},
		{Name: "EGRESS_TOKEN_2", Source: config.Source{Kind: config.SourceEnv, Ref: "OLD_TOKEN"}, Value: config.NewSecret(statusTestToken), Expiry: statusTestNow.Add(-3 * time.Minute)},
		{Name: "EGRESS_TOKEN_3", Source: config.Source{Kind: config.SourceCodex, Ref: "/home/v/.codex/auth.json"},
			Problem: "/home/v/.codex/auth.json: not found; run 'codex login --device-auth' on the host"},
	}
	facts := map[string]admin.SlotFacts{
		"EGRESS_TOKEN_0": {Rejected: &admin.Rejected{Host: "api.github.com", Status: 401, At: statusTestNow.Add(-time.Minute)}},
		"EGRESS_TOKEN_1": {Refresh: &hostlogin.State{Login: "/home/u/.codex/auth.json",
			LastRefresh: statusTestNow.Add(-10 * time.Minute), NextRefresh: statusTestNow.Add(20 * time.Minute)}},
	}
	routes := []config.Route{
		{Host: "api.github.com", TLS: config.Intercept, Auth: &config.Auth{Scheme: "Bearer", Slot: "EGRESS_TOKEN_0"}, DLP: config.DLP{Mode: config.DLPBlock, LargeBody: config.LargeBodyPass, MaxBody: config.DefaultDLPMaxBody},
			Matches: []config.Match{{Methods: []string{"GET"}, Paths: []config.PathMatch{{Type: config.PathPrefix, Value: "/repos/"}}}}},
		{Host: "pypi.org", TLS: config.Passthrough},
	}
	return admin.Status{Mode: admin.ModeServe, Version: "v1.2.3 (revision abc, go1.26.8)", CA: &admin.CAStatus{Path: "/work/.egressgate/ca.pem", NotAfter: statusTestNow.Add(3650 * 24 * time.Hour)},
		Bottles: []admin.BottleStatus{
			{
				Name: "demo", Manifest: "/work/demo.md", ConfigVersion: "3", AckedVersion: "3", EnvoyConnected: true,
				LastReload:      statusTestNow.Add(-5 * time.Minute),
				LastReloadError: "demo.md:7: egress.routes[0].tls: bad\ndemo.md:9: egress.routes[1].host: bad",
				Routes:          admin.RouteStatuses(routes),
				LeafRenewal:     statusTestNow.Add(20 * 24 * time.Hour),
				Slots:           admin.SlotStatuses(slots, facts, statusTestNow),
			},
			{Name: "idle", ConfigVersion: "1"},
		}}
}

// adminServer serves the fixture the way serve will: through admin.Handler.
func adminServer(t *testing.T) string {
	t.Helper()
	h := admin.Handler(statusFixture, func() bool { return true }, prometheus.NewRegistry())
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func runStatus(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := statusCommand()
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestPrintStatus(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, printStatus(&out, statusFixture(), statusTestNow))
	want := `egressgate v1.2.3 (revision abc, go1.26.8)
bottle CA /work/.egressgate/ca.pem: expires in 3650d0h (2036-02-27T12:00:00Z)
bottle demo (mode serve)
  LAST RELOAD FAILED; still serving config version 3:
    demo.md:7: egress.routes[0].tls: bad
    demo.md:9: egress.routes[1].host: bad
  manifest:           /work/demo.md
  config version:     3
  envoy:              connected, acked version 3 (current)
  last reload:        2026-03-01T11:55:00Z (5m ago), FAILED (above)
  leaf certificates:  renewed in 20d0h (2026-03-21T12:00:00Z)
  routes:
    HOST            TLS          AUTH                   ALLOW         UPSTREAM            DLP
    api.github.com  intercept    Bearer EGRESS_TOKEN_0  GET /repos/*  api.github.com:443  block large_body=pass
    pypi.org        passthrough  -                      tunnel        pypi.org:443        off
  slots:
    NAME            SOURCE                          PRESENT  STATE       EXPIRY
    EGRESS_TOKEN_0  env GITHUB_TOKEN                yes      rejected    unknown
    EGRESS_TOKEN_1  codex /home/u/.codex/auth.json  yes      ok          in 42m (2026-03-01T12:42:00Z)
    EGRESS_TOKEN_2  env OLD_TOKEN                   yes      expired     expired 3m ago (2026-03-01T11:57:00Z)
    EGRESS_TOKEN_3  codex /home/v/.codex/auth.json  no       logged out  unknown
    EGRESS_TOKEN_0 rejected: api.github.com answered 401 to it at 2026-03-01T11:59:00Z; set GITHUB_TOKEN in egressgate's environment on the host and restart egressgate
    EGRESS_TOKEN_1 refresh: last refreshed 10m ago (2026-03-01T11:50:00Z); next in 20m (2026-03-01T12:20:00Z)
    EGRESS_TOKEN_2 expired: expired at 2026-03-01T11:57:00Z; set OLD_TOKEN in egressgate's environment on the host and restart egressgate
    EGRESS_TOKEN_3 logged out: /home/v/.codex/auth.json: not found; run 'codex login --device-auth' on the host

bottle idle (mode serve)
  config version:  1
  envoy:           not connected
  last reload:     none since start
  routes:
    (none)
  slots:
    (none)
`
	assert.Equal(t, want, out.String())
}

func TestStatusCommandAgainstAdmin(t *testing.T) {
	addr := adminServer(t)
	out, err := runStatus(t, "--admin", addr)
	// The fixture's demo bottle failed its last reload and idle has no
	// Envoy: the status is printed, and the exit says something is wrong.
	require.EqualError(t, err, "egressgate status: bottle demo: the last reload failed; bottle idle: Envoy is not connected")
	for _, want := range []string{"bottle demo (mode serve)", "LAST RELOAD FAILED", "demo.md:7:", "api.github.com", "EGRESS_TOKEN_1", "codex /home/u/.codex/auth.json", "bottle idle"} {
		assert.Contains(t, out, want)
	}
	assert.NotContains(t, out, statusTestToken)
}

func TestStatusCommandJSON(t *testing.T) {
	addr := adminServer(t)
	out, err := runStatus(t, "--admin", "http://"+addr, "--json")
	require.Error(t, err, "the exit code does not depend on the format")
	var got admin.Status
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	assert.Equal(t, statusFixture(), got)
	assert.True(t, strings.HasSuffix(out, "}\n"))
	assert.NotContains(t, out, statusTestToken)
}

func TestStatusCommandUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // a port nothing listens on

	out, err := runStatus(t, "--admin", addr)
	require.Error(t, err)
	assert.Empty(t, out)
	msg := err.Error()
	assert.True(t, strings.HasPrefix(msg, "egressgate status: no egressgate admin at "+addr+": "), msg)
	assert.Contains(t, msg, "connection refused")
	assert.True(t, strings.HasSuffix(msg, "is egressgate serve running with --admin "+addr+"?"), msg)
	assert.NotContains(t, msg, "\n")
	assert.NotContains(t, msg, `Get "`, "the URL wrapper is dropped")
}

// Envoy's own admin also defaults to port 9901; pointing status at it (or
// at any other server) must say so rather than print an empty status.
func TestStatusCommandWrongServer(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"not found", func(w http.ResponseWriter, _ *http.Request) { http.NotFound(w, nil) }, "answered 404 Not Found"},
		{"not json", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("<html>")) }, "did not answer with an egressgate status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			_, err := runStatus(t, "--admin", strings.TrimPrefix(srv.URL, "http://"))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.True(t, strings.HasPrefix(err.Error(), "egressgate status: "), err.Error())
		})
	}
}

func TestShortDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{1500 * time.Millisecond, "2s"},
		{42*time.Minute + 10*time.Second, "42m"},
		{5*time.Hour + 12*time.Minute, "5h12m"},
		{76 * time.Hour, "3d4h"},
		{-time.Minute, "0s"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			assert.Equal(t, tt.want, shortDuration(tt.d))
		})
	}
}

func TestOneLineNeutralisesControls(t *testing.T) {
	assert.Equal(t, "a?b?[31m", oneLine("a\nb\x1b[31m"))
}

func TestStatusExitCode(t *testing.T) {
	healthy := admin.BottleStatus{Name: "demo", ConfigVersion: "3", AckedVersion: "3", EnvoyConnected: true}
	tests := []struct {
		name string
		st   admin.Status
		want []string
	}{
		{"healthy", admin.Status{Mode: admin.ModeServe, Bottles: []admin.BottleStatus{healthy}}, nil},
		{"reload failed", admin.Status{Mode: admin.ModeControl, Bottles: []admin.BottleStatus{
			func() admin.BottleStatus { b := healthy; b.LastReloadError = "x.md:1: bad"; return b }()}},
			[]string{"bottle demo: the last reload failed"}},
		{"no envoy", admin.Status{Mode: admin.ModeServe, Bottles: []admin.BottleStatus{
			func() admin.BottleStatus { b := healthy; b.EnvoyConnected = false; return b }()}},
			[]string{"bottle demo: Envoy is not connected"}},
		{"a sidecar has no envoy of its own", admin.Status{Mode: admin.ModeExtProc, Bottles: []admin.BottleStatus{{Name: "demo"}}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, unhealthy(tt.st))
		})
	}
}
