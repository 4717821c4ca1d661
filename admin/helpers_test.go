package admin

import (
	"time"

	"github.com/egressgate/egressgate/config"
)

// testToken is the credential every test slot holds; no output may show it.
const testToken = "tok-should-not-appear"

// testNow is a fixed clock, so expiry values are exact.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testSlots covers each case the status and metrics treat differently:
// no expiry, future expiry, past expiry, and empty.
func testSlots() []config.Slot {
	return []config.Slot{
		{Name: "EGRESS_TOKEN_0", Source: config.Source{Kind: config.SourceEnv, Ref: "GITHUB_TOKEN"}, Value: config.NewSecret(testToken)},
		{Name: "EGRESS_TOKEN_1", Source: config.Source{Kind: config.SourceCodex, Ref: "/home/u/.codex/auth.json"}, Value: config.NewSecret(testToken), Expiry: testNow.Add(time.Hour)},
		{Name: "EGRESS_TOKEN_2", Source: config.Source{Kind: config.SourceEnv, Ref: "OLD_TOKEN"}, Value: config.NewSecret(testToken), Expiry: testNow.Add(-3 * time.Minute)},
		{Name: "EGRESS_TOKEN_3", Source: config.Source{Kind: config.SourceEnv, Ref: "UNSET_TOKEN"}},
		{Name: "EGRESS_TOKEN_4", Source: config.Source{Kind: config.SourceCodex, Ref: "/home/v/.codex/auth.json"}, Problem: "/home/v/.codex/auth.json: not found; run 'codex login --device-auth' on the host"},
		{Name: "EGRESS_TOKEN_5", Source: config.Source{Kind: config.SourceEnv, Ref: "REVOKED_TOKEN"}, Value: config.NewSecret(testToken)},
	}
}

func testRoutes() []config.Route {
	return []config.Route{
		{
			Host: "api.github.com", TLS: config.Intercept,
			Auth: &config.Auth{Scheme: "Bearer", Slot: "EGRESS_TOKEN_0"},
			Matches: []config.Match{
				{Methods: []string{"GET", "HEAD"}, Paths: []config.PathMatch{{Type: config.PathPrefix, Value: "/repos/"}, {Type: config.PathExact, Value: "/user"}}},
				{Methods: []string{"POST"}},
			},
		},
		{Host: "chatgpt.com", TLS: config.Intercept, Auth: &config.Auth{Scheme: "Bearer", Slot: "EGRESS_TOKEN_1"}},
		{Host: "git.internal.test", TLS: config.Intercept, Upstream: config.Upstream{Address: "127.0.0.1:8443", CAFile: "/etc/ca.pem", CAPEM: []byte("pem")}},
		{Host: "pypi.org", TLS: config.Passthrough},
	}
}

func testStatus() Status {
	return Status{
		Mode: ModeServe,
		Bottles: []BottleStatus{{
			Name:            "demo",
			Manifest:        "/work/demo.md",
			ConfigVersion:   "3",
			AckedVersion:    "2",
			EnvoyConnected:  true,
			LastReload:      testNow,
			LastReloadError: "demo.md:7: egress.routes[0].tls: \"passthru\" is not intercept or passthrough",
			Routes:          RouteStatuses(testRoutes()),
			Slots:           SlotStatuses(testSlots(), nil, testNow),
		}},
	}
}
