package admin

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/config"
)

func TestRouteStatuses(t *testing.T) {
	got := RouteStatuses(testRoutes())
	want := []RouteStatus{
		{Host: "api.github.com", TLS: "intercept", Auth: "Bearer EGRESS_TOKEN_0", Allow: "GET,HEAD /repos/* /user; POST /*", Upstream: "api.github.com:443", DLP: "off"},
		{Host: "chatgpt.com", TLS: "intercept", Auth: "Bearer EGRESS_TOKEN_1", Allow: "all", Upstream: "chatgpt.com:443", DLP: "off"},
		{Host: "git.internal.test", TLS: "intercept", Allow: "all", Upstream: "127.0.0.1:8443 ca=/etc/ca.pem", DLP: "off"},
		{Host: "pypi.org", TLS: "passthrough", Allow: "tunnel", Upstream: "pypi.org:443", DLP: "off"},
	}
	assert.Equal(t, want, got)
}

func TestSlotStatuses(t *testing.T) {
	rejectedAt := testNow.Add(-time.Minute)
	facts := map[string]SlotFacts{"EGRESS_TOKEN_5": {Rejected: &Rejected{Host: "api.example.test", Status: 401, At: rejectedAt}}}
	got := SlotStatuses(testSlots(), facts, testNow)
	require.Len(t, got, 6)
	tests := []struct {
		name    string
		source  string
		present bool
		state   string
		detail  string
		expiry  *time.Time
		display string
	}{
		{"EGRESS_TOKEN_0", "env GITHUB_TOKEN", true, SlotOK, "", nil, "<redacted:EGRESS_TOKEN_0>"},
		{"EGRESS_TOKEN_1", "codex /home/u/.codex/auth.json", true, SlotOK, "", new(testNow.Add(time.Hour)), "<redacted:EGRESS_TOKEN_1 exp=2026-03-01T13:00:00Z>"},
		{"EGRESS_TOKEN_2", "env OLD_TOKEN", true, SlotExpired, "expired at 2026-03-01T11:57:00Z; set OLD_TOKEN in egressgate's environment on the host and restart egressgate",
			new(testNow.Add(-3 * time.Minute)), "<redacted:EGRESS_TOKEN_2 exp=2026-03-01T11:57:00Z>"},
		{"EGRESS_TOKEN_3", "env UNSET_TOKEN", false, SlotEmpty, "set UNSET_TOKEN in egressgate's environment on the host and restart egressgate", nil, "<empty:EGRESS_TOKEN_3>"},
		{"EGRESS_TOKEN_4", "codex /home/v/.codex/auth.json", false, SlotLoggedOut, "/home/v/.codex/auth.json: not found; run 'codex login --device-auth' on the host", nil, "<empty:EGRESS_TOKEN_4>"},
		{"EGRESS_TOKEN_5", "env REVOKED_TOKEN", true, SlotRejected,
			"api.example.test answered 401 to it at 2026-03-01T11:59:00Z; set REVOKED_TOKEN in egressgate's environment on the host and restart egressgate", nil, "<redacted:EGRESS_TOKEN_5>"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, SlotStatus{Name: tt.name, Source: tt.source, Present: tt.present, State: tt.state, Detail: tt.detail,
				Expiry: tt.expiry, Display: tt.display}, got[i])
		})
	}
}

func TestStatusJSONHoldsNoSecret(t *testing.T) {
	body, err := json.Marshal(testStatus())
	require.NoError(t, err)
	assert.NotContains(t, string(body), testToken)
	assert.Contains(t, string(body), `"last_reload_error":"demo.md:7:`)
	assert.Contains(t, string(body), `"auth":"Bearer EGRESS_TOKEN_0"`)
}

// A bottle that has not reloaded since start has no last_reload at all,
// not Go's zero time, which a reader would take for a real date.
func TestStatusJSONOmitsUnsetFields(t *testing.T) {
	body, err := json.Marshal(Status{Mode: ModeControl, Bottles: []BottleStatus{{Name: "demo", ConfigVersion: "1"}}})
	require.NoError(t, err)
	assert.JSONEq(t, `{"mode":"control","bottles":[{"name":"demo","config_version":"1","envoy_connected":false,"routes":null,"slots":null}]}`, string(body))
}

func TestAuthText(t *testing.T) {
	assert.Equal(t, "", AuthText(nil))
	assert.Equal(t, "Bearer EGRESS_TOKEN_0", AuthText(&config.Auth{Scheme: "Bearer", Slot: "EGRESS_TOKEN_0"}))
	assert.Equal(t, "x-api-key: EGRESS_TOKEN_1", AuthText(&config.Auth{Header: "x-api-key", Slot: "EGRESS_TOKEN_1"}))
}

func TestDLPText(t *testing.T) {
	for want, d := range map[string]config.DLP{
		"off":   {Mode: config.DLPOff, LargeBody: config.LargeBodyBlock, MaxBody: 5},
		"block": {Mode: config.DLPBlock, LargeBody: config.LargeBodyBlock, MaxBody: config.DefaultDLPMaxBody},
		"log large_body=pass max_body_bytes=65536": {Mode: config.DLPLog, LargeBody: config.LargeBodyPass, MaxBody: 65536},
	} {
		assert.Equal(t, want, DLPText(d))
	}
}
