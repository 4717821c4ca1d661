package serve

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/internal/testenv"
)

// TestLogSlotChanges: a rotation and a revocation are each one log line
// naming the slot and its source, never the value.
func TestLogSlotChanges(t *testing.T) {
	src := config.Source{Kind: config.SourceCodex, Ref: "/home/u/.codex/auth.json"}
	policy := func(value, problem string) *config.Policy {
		return &config.Policy{Name: "demo", Slots: []config.Slot{{Name: "EGRESS_TOKEN_0", Source: src, Value: config.NewSecret(value), Problem: problem}}}
	}
	tests := []struct {
		name      string
		old, next *config.Policy
		want      string
	}{
		{"rotated", policy("tok-old-value", ""), policy("tok-new-value", ""), "credential rotated"},
		{"revoked", policy("tok-old-value", ""), policy("", "/home/u/.codex/auth.json: not found"), "credential revoked"},
		{"logged in again", policy("", "gone"), policy("tok-new-value", ""), "credential rotated"},
		{"unchanged", policy("tok-old-value", ""), policy("tok-old-value", ""), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf testenv.Buffer
			logSlotChanges(testenv.Logger(&buf), tt.old, tt.next)
			out := buf.String()
			if tt.want == "" {
				assert.Empty(t, out)
				return
			}
			assert.Contains(t, out, tt.want)
			assert.Contains(t, out, "EGRESS_TOKEN_0")
			assert.NotContains(t, out, "tok-old-value")
			assert.NotContains(t, out, "tok-new-value")
		})
	}
}
