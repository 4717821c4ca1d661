package admin

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func demoSlots() []BottleSlots {
	return []BottleSlots{{Bottle: "demo", Slots: testSlots()}}
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
# HELP egressgate_extproc_requests_total ext_proc request decisions by action (inject, strip, deny).
# TYPE egressgate_extproc_requests_total counter
egressgate_extproc_requests_total{action="deny"} 2
egressgate_extproc_requests_total{action="inject"} 1
egressgate_extproc_requests_total{action="strip"} 0
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want),
		"egressgate_reloads_total", "egressgate_last_reload_success", "egressgate_extproc_requests_total"))

	n, err := testutil.GatherAndCount(reg, "egressgate_last_reload_timestamp_seconds")
	require.NoError(t, err)
	assert.Equal(t, 2, n, "one timestamp per bottle that has reloaded successfully")
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	assert.Empty(t, problems)
}

// Two Metrics on two registries do not collide: nothing is global.
func TestMetricsNoGlobalState(t *testing.T) {
	NewMetrics(prometheus.NewRegistry(), nil)
	NewMetrics(prometheus.NewRegistry(), nil)
}
