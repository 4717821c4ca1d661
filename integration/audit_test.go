package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/audit"
)

// auditRecords reads the audit log of a state dir.
func auditRecords(t testing.TB, stateDir string) []audit.Record {
	t.Helper()
	f, err := os.Open(filepath.Join(stateDir, audit.FileName))
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	defer f.Close()
	var out []audit.Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r audit.Record
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r), "line %q", sc.Text())
		out = append(out, r)
	}
	require.NoError(t, sc.Err())
	return out
}

// recordFor waits for the one audit record matching match.
func recordFor(t testing.TB, stateDir, what string, match func(audit.Record) bool) audit.Record {
	t.Helper()
	var found []audit.Record
	eventually(t, propagation, "the audit record of "+what, func() bool {
		found = found[:0]
		for _, r := range auditRecords(t, stateDir) {
			if match(r) {
				found = append(found, r)
			}
		}
		return len(found) > 0
	})
	assert.Len(t, found, 1, "exactly one record for %s: %+v", what, found)
	return found[0]
}

func pathIs(path string) func(audit.Record) bool {
	return func(r audit.Record) bool { return r.Path == path }
}

// TestAuditTrail: each kind of refusal and each kind of success leaves
// exactly one JSON record with the right fields, and no record holds a
// secret or a query string.
func TestAuditTrail(t *testing.T) {
	pki := newUpstreamPKI(t, testHosts...)
	up := newUpstream(t, pki)
	login := newHostLogin(t, time.Now().Add(time.Hour))
	b := startBottle(t, bottleOptions{manifest: codexManifest(true, up, pki), codexHome: login.home})
	auditEachKind(t, b.egress, login)

	metrics := httpGet(t, "http://"+b.admin+"/metrics")
	assert.Contains(t, metrics, `egressgate_requests_total{bottle="itest",decision="forwarded_with_credential",host="chatgpt.com",reason=""} 1`)
	assert.Contains(t, metrics, `egressgate_requests_total{bottle="itest",decision="refused",host="other",reason="host_not_allowed"} 1`)
	assert.Contains(t, metrics, "egressgate_audit_records_dropped_total 0")
	assert.Contains(t, metrics, `egressgate_envoy_connected{bottle="itest"} 1`)
	assert.Regexp(t, `egressgate_xds_responses_total\{node="itest",outcome="acked",type="Listener"\} [1-9]`, metrics)
	assert.Regexp(t, `egressgate_extproc_decision_seconds_count [1-9]`, metrics)
	assert.Regexp(t, `egressgate_build_info\{goversion="go[^"]+",revision="[^"]*",version="[^"]+"\} 1`, metrics)
}

// auditEachKind sends through e one request of each kind, as the bottle
// "itest" of codexManifest allows them, and checks that each left exactly
// one record with the right fields in e's audit trail, and that no record
// holds a secret or a query string.
func auditEachKind(t *testing.T, e egress, login *hostLogin) {
	t.Helper()
	client := e.agent(t, false)
	// Earlier tests on e may have sent the same requests.
	since := time.Now()
	recordFor := func(t testing.TB, stateDir, what string, match func(audit.Record) bool) audit.Record {
		t.Helper()
		return recordFor(t, stateDir, what, func(r audit.Record) bool { return !r.Time.Before(since) && match(r) })
	}
	// The agent lies about its address, on the CONNECT and inside the
	// tunnel; the record must give its socket's.
	client.Transport.(*http.Transport).ProxyConnectHeader = http.Header{"X-Forwarded-For": {"203.0.113.7"}}
	var agentAddr string // the agent's end of its connection to the proxy
	trace := &httptrace.ClientTrace{GotConn: func(c httptrace.GotConnInfo) { agentAddr = c.Conn.LocalAddr().String() }}
	do := func(method, url string) int {
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), method, url, strings.NewReader("body"))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer agent-own-secret-token")
		req.Header.Set("X-Forwarded-For", "203.0.113.8")
		resp, err := client.Do(req)
		if err != nil {
			return 0
		}
		// Read to the end: closing an unread HTTP/1.1 body drops the
		// connection, and Envoy may then record the request as cut off by
		// the agent (downstream_remote_disconnect) instead of answered.
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}

	assert.Equal(t, http.StatusOK, do(http.MethodGet, "https://chatgpt.com/backend-api/audit/cred?token=query-secret"))
	r := recordFor(t, e.stateDir, "a credentialed request", pathIs("/backend-api/audit/cred"))
	assert.Equal(t, audit.ForwardedWithCredential, r.Decision)
	assert.Equal(t, "EGRESS_TOKEN_0", r.Slot)
	assert.Equal(t, "itest", r.Bottle)
	assert.Equal(t, audit.KindRequest, r.Kind)
	assert.Equal(t, "GET", r.Method)
	assert.Equal(t, "chatgpt.com", r.Host)
	assert.EqualValues(t, 200, r.Status)
	assert.EqualValues(t, 200, r.UpstreamStatus)
	assert.NotEmpty(t, r.Route)
	assert.Positive(t, r.BytesReceived)
	assert.Positive(t, r.BytesSent)
	assert.Positive(t, r.DurationMS)
	assert.WithinDuration(t, time.Now(), r.Time, time.Minute)
	// Intercepted requests arrive on an internal listener; the address is
	// the agent's, carried over from the CONNECT.
	assert.Equal(t, agentAddr, r.Agent, "the agent's address")

	assert.Equal(t, http.StatusOK, do(http.MethodGet, "https://api.example.test/allowed/audit-open"))
	r = recordFor(t, e.stateDir, "an open route", pathIs("/allowed/audit-open"))
	assert.Equal(t, audit.Forwarded, r.Decision)
	assert.Empty(t, r.Slot)

	assert.Equal(t, http.StatusForbidden, do(http.MethodGet, "https://api.example.test/forbidden/audit-path"))
	r = recordFor(t, e.stateDir, "a refused path", pathIs("/forbidden/audit-path"))
	assert.Equal(t, audit.Refused, r.Decision)
	assert.Equal(t, "not_allowed", r.Reason)
	assert.EqualValues(t, 403, r.Status)

	assert.Equal(t, http.StatusOK, do(http.MethodPost, "https://auth.openai.com/oauth/token"))
	r = recordFor(t, e.stateDir, "an egress answer", pathIs("/oauth/token"))
	assert.Equal(t, audit.Answered, r.Decision)
	assert.Equal(t, "refresh_answered", r.Reason)
	assert.Zero(t, r.UpstreamStatus)

	do(http.MethodGet, "https://evil-audit.example.test/audit")
	r = recordFor(t, e.stateDir, "a refused CONNECT", func(r audit.Record) bool { return r.Host == "evil-audit.example.test" })
	assert.Equal(t, audit.KindConnect, r.Kind)
	assert.Equal(t, audit.Refused, r.Decision)
	assert.Equal(t, "host_not_allowed", r.Reason)
	assert.EqualValues(t, 443, r.Port)
	assert.Regexp(t, `^127\.0\.0\.1:[0-9]+$`, r.Agent, "the agent's address")

	data, err := os.ReadFile(filepath.Join(e.stateDir, audit.FileName))
	require.NoError(t, err)
	t.Logf("audit log:\n%s", data)
	for _, secret := range []string{login.accessToken, "agent-own-secret-token", "query-secret", "rt-host-refresh-secret"} {
		assert.NotContains(t, string(data), secret)
	}
}

// TestDeadAuditSinkFailsNoRequest: with the audit log on a full disk
// (/dev/full fails every write), every agent request still gets its
// answer, and the lost records are counted.
func TestDeadAuditSinkFailsNoRequest(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full to stand for a full disk")
	}
	pki := newUpstreamPKI(t, testHosts...)
	up := newUpstream(t, pki)
	login := newHostLogin(t, time.Now().Add(time.Hour))
	b := startBottle(t, bottleOptions{manifest: codexManifest(true, up, pki), codexHome: login.home,
		args: []string{"--audit-log", "/dev/full"}})
	client := b.agent(t, true)
	const requests = 50
	for i := range requests {
		require.Equal(t, http.StatusOK, get(t, client, fmt.Sprintf("https://chatgpt.com/backend-api/dead-sink/%d", i)), "request %d", i)
	}
	_, err := client.Get("https://evil-dead-sink.example.test/")
	require.Error(t, err, "refusals still work too")
	eventually(t, propagation, "every lost record counted", func() bool {
		m := regexp.MustCompile(`egressgate_audit_records_dropped_total (\d+)`).FindStringSubmatch(httpGet(t, "http://"+b.admin+"/metrics"))
		n, _ := strconv.Atoi(m[1])
		return n >= requests+1
	})
	assert.Contains(t, b.stderr.String(), "cannot write the audit log; records are dropped and counted")
}
