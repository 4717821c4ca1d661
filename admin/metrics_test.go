package admin

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/audit"
	"github.com/egressgate/egressgate/hostlogin"
	"github.com/egressgate/egressgate/internal/buildinfo"
)

func demoSlots() []BottleSlots {
	return []BottleSlots{{Bottle: "demo", Slots: testSlots(), Facts: map[string]SlotFacts{
		"EGRESS_TOKEN_1": {Refresh: &hostlogin.State{Login: "/home/u/.codex/auth.json", Error: "the token endpoint answered 503"}},
		"EGRESS_TOKEN_5": {Rejected: &Rejected{Host: "api.example.test", Status: 401, At: testNow}},
	}}}
}

// The collector reads the clock at scrape time: a future expiry is a
// positive countdown, a past one negative, an unknown one absent, and an
// empty slot has presence 0 and no countdown.
func TestSlotCollector(t *testing.T) {
	c := newSlotCollector(demoSlots, func() time.Time { return testNow })
	want := `
# HELP egressgate_credential_expiry_seconds Seconds until the slot's credential expires; negative once expired. Absent when the source gives no expiry.
# TYPE egressgate_credential_expiry_seconds gauge
egressgate_credential_expiry_seconds{bottle="demo",slot="EGRESS_TOKEN_1",source="codex /home/u/.codex/auth.json"} 3600
egressgate_credential_expiry_seconds{bottle="demo",slot="EGRESS_TOKEN_2",source="env OLD_TOKEN"} -180
# HELP egressgate_credential_present 1 if the slot holds a credential, 0 if it is empty.
# TYPE egressgate_credential_present gauge
egressgate_credential_present{bottle="demo",slot="EGRESS_TOKEN_0",source="env GITHUB_TOKEN"} 1
egressgate_credential_present{bottle="demo",slot="EGRESS_TOKEN_1",source="codex /home/u/.codex/auth.json"} 1
egressgate_credential_present{bottle="demo",slot="EGRESS_TOKEN_2",source="env OLD_TOKEN"} 1
egressgate_credential_present{bottle="demo",slot="EGRESS_TOKEN_3",source="env UNSET_TOKEN"} 0
egressgate_credential_present{bottle="demo",slot="EGRESS_TOKEN_4",source="codex /home/v/.codex/auth.json"} 0
egressgate_credential_present{bottle="demo",slot="EGRESS_TOKEN_5",source="env REVOKED_TOKEN"} 1
# HELP egressgate_credential_state 1 for the slot's current state: ok (its credential is sent), empty, logged_out, expired or rejected (by its upstream).
# TYPE egressgate_credential_state gauge
egressgate_credential_state{bottle="demo",slot="EGRESS_TOKEN_0",source="env GITHUB_TOKEN",state="empty"} 0
egressgate_credential_state{bottle="demo",slot="EGRESS_TOKEN_0",source="env GITHUB_TOKEN",state="expired"} 0
egressgate_credential_state{bottle="demo",slot="EGRESS_TOKEN_0",source="env GITHUB_TOKEN",state="logged_out"} 0
egressgate_credential_state{bottle="demo",slot="EGRESS_TOKEN_0",source="env GITHUB_TOKEN",state="ok"} 1
egressgate_credential_state{bottle="demo",slot="EGRESS_TOKEN_0",source="env GITHUB_TOKEN",state="rejected"} 0
egressgate_credential_state{bottle="demo",slot="EGRESS_TOKEN_1",source="codex /home/u/.codex/auth.json",state="empty"} 0
egressgate_credential_state{bottle="demo",slot="EGRESS_TOKEN_1",source="codex /home/u/.codex/auth.json",state="expired"} 0
egressgate_credential_state{bottle="demo",slot="EGRESS_TOKEN_1",source="codex /home/u/.codex/auth.json",state="logged_out"} 0
egressgate_credential_state{bottle="demo",slot="EGRESS_TOKEN_1",source="codex /home/u/.codex/auth.json",state="ok"} 1
egressgate_credential_state{bottle="demo",slot="EGRESS_TOKEN_1",source="codex /home/u/.codex/auth.json",state="rejected"} 0
egressgate_credential_state{bottle="demo",slot="EGRESS_TOKEN_2",source="env OLD_TOKEN",state="empty"} 0
egressgate_credential_state{bottle="demo",slot="EGRESS_TOKEN_2",source="env OLD_TOKEN",state="expired"} 1
egressgate_credential_state{bottle="demo",slot="EGRESS_TOKEN_2",source="env OLD_TOKEN",state="logged_out"} 0
egressgate_credential_state{bottle="demo",slot="EGRESS_TOKEN_2",source="env OLD_TOKEN",state="ok"} 0
egressgate_credential_state{bottle="demo",slot="EGRESS_TOKEN_2",source="env OLD_TOKEN",state="rejected"} 0
egressgate_credential_state{bottle="demo",slot="EGRESS_TOKEN_3",source="env UNSET_TOKEN",state="empty"} 1
egressgate_credential_state{bottle="demo",slot="EGRESS_TOKEN_3",source="env UNSET_TOKEN",state="expired"} 0
egressgate_credential_state{bottle="demo",slot="EGRESS_TOKEN_3",source="env UNSET_TOKEN",state="logged_out"} 0
egressgate_credential_state{bottle="demo",slot="EGRESS_TOKEN_3",source="env UNSET_TOKEN",state="ok"} 0
egressgate_credential_state{bottle="demo",slot="EGRESS_TOKEN_3",source="env UNSET_TOKEN",state="rejected"} 0
egressgate_credential_state{bottle="demo",slot="EGRESS_TOKEN_4",source="codex /home/v/.codex/auth.json",state="empty"} 0
egressgate_credential_state{bottle="demo",slot="EGRESS_TOKEN_4",source="codex /home/v/.codex/auth.json",state="expired"} 0
egressgate_credential_state{bottle="demo",slot="EGRESS_TOKEN_4",source="codex /home/v/.codex/auth.json",state="logged_out"} 1
egressgate_credential_state{bottle="demo",slot="EGRESS_TOKEN_4",source="codex /home/v/.codex/auth.json",state="ok"} 0
egressgate_credential_state{bottle="demo",slot="EGRESS_TOKEN_4",source="codex /home/v/.codex/auth.json",state="rejected"} 0
egressgate_credential_state{bottle="demo",slot="EGRESS_TOKEN_5",source="env REVOKED_TOKEN",state="empty"} 0
egressgate_credential_state{bottle="demo",slot="EGRESS_TOKEN_5",source="env REVOKED_TOKEN",state="expired"} 0
egressgate_credential_state{bottle="demo",slot="EGRESS_TOKEN_5",source="env REVOKED_TOKEN",state="logged_out"} 0
egressgate_credential_state{bottle="demo",slot="EGRESS_TOKEN_5",source="env REVOKED_TOKEN",state="ok"} 0
egressgate_credential_state{bottle="demo",slot="EGRESS_TOKEN_5",source="env REVOKED_TOKEN",state="rejected"} 1
# HELP egressgate_host_login_refresh_failing 1 while egressgate's refreshes of the slot's host login fail (refresh_host_credentials), 0 otherwise.
# TYPE egressgate_host_login_refresh_failing gauge
egressgate_host_login_refresh_failing{bottle="demo",slot="EGRESS_TOKEN_1",source="codex /home/u/.codex/auth.json"} 1
`
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(want)))
	problems, err := testutil.CollectAndLint(c)
	require.NoError(t, err)
	assert.Empty(t, problems)
}

// The countdown moves with the clock between reloads, which is the point
// of computing it at scrape time.
func TestSlotCollectorFollowsClock(t *testing.T) {
	now := testNow
	c := newSlotCollector(demoSlots, func() time.Time { return now })
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	expiry := func() float64 {
		t.Helper()
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() == "egressgate_credential_expiry_seconds" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("no expiry series")
		return 0
	}
	assert.Equal(t, 3600.0, expiry())
	now = testNow.Add(61 * time.Minute)
	assert.Equal(t, -60.0, expiry())
}

func TestSlotCollectorNilSlots(t *testing.T) {
	assert.Equal(t, 0, testutil.CollectAndCount(newSlotCollector(nil, time.Now)))
}

func TestMetricsRecordEvents(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg, demoSlots)
	m.ReloadSucceeded("demo")
	m.ReloadSucceeded("demo")
	m.ReloadFailed("demo")
	m.ReloadSucceeded("other")
	m.ExtProcDecision(ActionInject)
	m.ExtProcDecision(ActionDeny)
	m.ExtProcDecision(ActionDeny)
	m.CredentialRejected("demo", "EGRESS_TOKEN_0", "chatgpt.com")
	m.HostLoginRefreshed("/home/u/.codex/auth.json", "failure")
	m.HostLoginRefreshed("/home/u/.codex/auth.json", "success")

	want := `
# HELP egressgate_reloads_total Policy reloads by bottle and result (success or failure).
# TYPE egressgate_reloads_total counter
egressgate_reloads_total{bottle="demo",result="failure"} 1
egressgate_reloads_total{bottle="demo",result="success"} 2
egressgate_reloads_total{bottle="other",result="failure"} 0
egressgate_reloads_total{bottle="other",result="success"} 1
# HELP egressgate_last_reload_success 1 if the bottle's last reload succeeded, 0 if it failed and the previous policy is still served.
# TYPE egressgate_last_reload_success gauge
egressgate_last_reload_success{bottle="demo"} 0
egressgate_last_reload_success{bottle="other"} 1
# HELP egressgate_extproc_requests_total ext_proc request decisions by action (inject, strip, deny, answer).
# TYPE egressgate_extproc_requests_total counter
egressgate_extproc_requests_total{action="answer"} 0
egressgate_extproc_requests_total{action="deny"} 2
egressgate_extproc_requests_total{action="inject"} 1
egressgate_extproc_requests_total{action="strip"} 0
# HELP egressgate_credential_rejections_total Upstream refusals (401) of an injected host credential, by bottle, slot and host; each stops the slot's routes until the host credential changes.
# TYPE egressgate_credential_rejections_total counter
egressgate_credential_rejections_total{bottle="demo",host="chatgpt.com",slot="EGRESS_TOKEN_0"} 1
# HELP egressgate_host_login_refreshes_total Refreshes of the host's Codex login by egressgate (refresh_host_credentials), by login file and result (success, failure, skipped: someone else had refreshed).
# TYPE egressgate_host_login_refreshes_total counter
egressgate_host_login_refreshes_total{login="/home/u/.codex/auth.json",result="failure"} 1
egressgate_host_login_refreshes_total{login="/home/u/.codex/auth.json",result="skipped"} 0
egressgate_host_login_refreshes_total{login="/home/u/.codex/auth.json",result="success"} 1
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want),
		"egressgate_reloads_total", "egressgate_last_reload_success", "egressgate_extproc_requests_total",
		"egressgate_credential_rejections_total", "egressgate_host_login_refreshes_total"))

	n, err := testutil.GatherAndCount(reg, "egressgate_last_reload_timestamp_seconds")
	require.NoError(t, err)
	assert.Equal(t, 2, n, "one timestamp per bottle that has reloaded successfully")
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	assert.Empty(t, problems)
}

// Each detection of an audited request is counted once, by its labels.
func TestMetricsCountDetections(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg, demoSlots)
	m.Request(audit.Record{Bottle: "demo", Host: "api.github.com", Route: "api.github.com/0", Decision: audit.Refused, Reason: "dlp_secret",
		DLP: []audit.Detection{{Where: "body", Kind: "canary", Name: "aws@r1", Fingerprint: "0123456789ab", Action: "block"}, {Where: "header", Kind: "jwt", Fingerprint: "ba9876543210", Action: "log"}}})
	m.Request(audit.Record{Bottle: "demo", Host: "api.github.com", Route: "api.github.com/0", Decision: audit.Forwarded,
		DLP: []audit.Detection{{Where: "header", Kind: "jwt", Fingerprint: "ba9876543210", Action: "log"}}})
	want := `
# HELP egressgate_dlp_detections_total Secrets found in agent requests on routes with DLP on, from the audit trail, by bottle, host, kind (known-secret, canary, pattern or a format such as github-token), where (path, header, body, trailer, websocket) and action (block: refused; log: recorded and forwarded).
# TYPE egressgate_dlp_detections_total counter
egressgate_dlp_detections_total{action="block",bottle="demo",host="api.github.com",kind="canary",where="body"} 1
egressgate_dlp_detections_total{action="log",bottle="demo",host="api.github.com",kind="jwt",where="header"} 2
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), "egressgate_dlp_detections_total"))
}

// Two Metrics on two registries do not collide: nothing is global.
func TestMetricsNoGlobalState(t *testing.T) {
	NewMetrics(prometheus.NewRegistry(), nil)
	NewMetrics(prometheus.NewRegistry(), nil)
}

func TestBuildInfo(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	RegisterBuildInfo(reg, buildinfo.Info{Version: "v1.2.3", Revision: "abc", GoVersion: "go1.26.8"})
	want := `
# HELP egressgate_build_info Always 1; the labels say which egressgate build is running.
# TYPE egressgate_build_info gauge
egressgate_build_info{goversion="go1.26.8",revision="abc",version="v1.2.3"} 1
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), "egressgate_build_info"))
}
