package admin

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRouteStatuses(t *testing.T) {
	got := RouteStatuses(testRoutes())
	want := []RouteStatus{
		{Host: "api.github.com", TLS: "intercept", Auth: "Bearer EGRESS_TOKEN_0", Allow: "GET,HEAD /repos/* /user; POST /*", Upstream: "api.github.com:443"},
		{Host: "chatgpt.com", TLS: "intercept", Auth: "Bearer EGRESS_TOKEN_1", Allow: "all", Upstream: "chatgpt.com:443"},
		{Host: "git.internal.test", TLS: "intercept", Allow: "all", Upstream: "127.0.0.1:8443 ca=/etc/ca.pem"},
		{Host: "pypi.org", TLS: "passthrough", Allow: "tunnel", Upstream: "pypi.org:443"},
	}
	assert.Equal(t, want, got)
}

func TestSlotStatuses(t *testing.T) {
	got := SlotStatuses(testSlots())
	require.Len(t, got, 4)
	tests := []struct {
		name    string
		source  string
		present bool
		expiry  *time.Time
		display string
	}{
		{"EGRESS_TOKEN_0", "env GITHUB_TOKEN", true, nil, "<redacted:EGRESS_TOKEN_0>"},
		{"EGRESS_TOKEN_1", "codex /home/u/.codex/auth.json", true, new(testNow.Add(time.Hour)), "<redacted:EGRESS_TOKEN_1 exp=2026-03-01T13:00:00Z>"},
		{"EGRESS_TOKEN_2", "env OLD_TOKEN", true, new(testNow.Add(-3 * time.Minute)), "<redacted:EGRESS_TOKEN_2 exp=2026-03-01T11:57:00Z>"},
		{"EGRESS_TOKEN_3", "env UNSET_TOKEN", false, nil, "<empty:EGRESS_TOKEN_3>"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, SlotStatus{Name: tt.name, Source: tt.source, Present: tt.present, Expiry: tt.expiry, Display: tt.display}, got[i])
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
