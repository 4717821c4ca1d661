package serve

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/internal/testenv"
)

// TestExpiryWarnings: by the plane's clock, a credential is warned about
// once when it comes within expiryWarning of its expiry and once when it
// has expired; a new value is warned about afresh; the value is never
// logged.
func TestExpiryWarnings(t *testing.T) {
	start := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clock := &fakeClock{t: start}
	var logs testenv.Buffer
	src := config.Source{Kind: config.SourceCodex, Ref: "/home/u/.codex/auth.json"}
	served := &bottle{name: "demo"}
	serveSlot := func(value string, expiry time.Time) {
		served.current = &compiled{policy: &config.Policy{Name: "demo", Slots: []config.Slot{
			{Name: "EGRESS_TOKEN_0", Source: src, Value: config.NewSecret(value), Expiry: expiry},
			// No expiry known, and empty: never warned about.
			{Name: "EGRESS_TOKEN_1", Source: src, Value: config.NewSecret("tok-no-expiry")},
			{Name: "EGRESS_TOKEN_2", Source: src, Expiry: start},
		}}}
	}
	serveSlot("tok-first-value", start.Add(20*time.Minute))
	p := &plane{log: testenv.Logger(&logs), now: clock.now, bottles: []*bottle{served}}
	warned := map[string]bool{}

	steps := []struct {
		name    string
		advance time.Duration
		rotate  bool
		want    string // the one new line's message; "" none
	}{
		{"20 minutes left", 0, false, ""},
		{"16 minutes left", 4 * time.Minute, false, ""},
		{"15 minutes left", time.Minute, false, "credential expires soon"},
		{"14 minutes left: said already", time.Minute, false, ""},
		{"expiring now", 14 * time.Minute, false, "credential expired"},
		{"expired: said already", time.Hour, false, ""},
		{"a new value, 20 minutes left", 0, true, ""},
		{"the new value within the warning", 10 * time.Minute, false, "credential expires soon"},
	}
	for _, s := range steps {
		clock.advance(s.advance)
		if s.rotate {
			serveSlot("tok-second-value", clock.t.Add(20*time.Minute))
		}
		before := logs.String()
		p.checkExpiry(warned)
		added := strings.TrimPrefix(logs.String(), before)
		if s.want == "" {
			assert.Empty(t, added, s.name)
			continue
		}
		assert.Equal(t, 1, strings.Count(added, "\n"), "%s: one line: %s", s.name, added)
		assert.Contains(t, added, s.want, s.name)
		assert.Contains(t, added, "EGRESS_TOKEN_0", s.name)
	}
	assert.NotContains(t, logs.String(), "tok-")
}
