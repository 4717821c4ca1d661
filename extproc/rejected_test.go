package extproc

import (
	"context"
	"testing"
	"time"

	accesslogdatav3 "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/extprocapi"
)

// logEntry is what Envoy's credential access log sends for one answer.
func logEntry(slot config.Slot, host string, status uint32, details string, start time.Time) *accesslogdatav3.HTTPAccessLogEntry {
	return &accesslogdatav3.HTTPAccessLogEntry{
		CommonProperties: &accesslogdatav3.AccessLogCommon{
			StartTime:  timestamppb.New(start),
			CustomTags: map[string]string{extprocapi.TagSlot: slot.Name, extprocapi.TagHost: host, extprocapi.TagSource: slot.Source.String()},
		},
		Response: &accesslogdatav3.HTTPResponseProperties{ResponseCode: wrapperspb.UInt32(status), ResponseCodeDetails: details},
	}
}

// sendLogs streams entries to the server's access log service and waits
// until the server has read them (the stream's close is acknowledged).
func (h *harness) sendLogs(t *testing.T, entries ...*accesslogdatav3.HTTPAccessLogEntry) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := accesslogv3.NewAccessLogServiceClient(h.conn).StreamAccessLogs(ctx)
	require.NoError(t, err)
	require.NoError(t, stream.Send(&accesslogv3.StreamAccessLogsMessage{
		Identifier: &accesslogv3.StreamAccessLogsMessage_Identifier{LogName: "egressgate-credential"},
		LogEntries: &accesslogv3.StreamAccessLogsMessage_HttpLogs{HttpLogs: &accesslogv3.StreamAccessLogsMessage_HTTPAccessLogEntries{LogEntry: entries}},
	}))
	_, err = stream.CloseAndRecv()
	require.NoError(t, err)
}

// TestUpstreamRejectionStopsTheSlot: once the upstream answers 401 to the
// injected value, the slot's routes are refused with a reason naming the
// host and the fix, and the refusal lasts until the value changes.
func TestUpstreamRejectionStopsTheSlot(t *testing.T) {
	var told []Rejection
	h := newHarnessWith(t, Options{OnRejected: func(r Rejection) { told = append(told, r) }})
	slot := codexSlot(tokenA, t0.Add(time.Hour))
	h.srv.SetSlots([]config.Slot{slot})
	md := route("chatgpt.com", slot.Name, "Bearer")
	requireInjected(t, h.headers(t, md), "Bearer "+tokenA)

	h.clock.Set(t0.Add(time.Second))
	h.sendLogs(t, logEntry(slot, "chatgpt.com", 401, "via_upstream", t0.Add(500*time.Millisecond)))
	body := requireRefused(t, h.headers(t, md), codeRejected, "chatgpt.com rejected the host's Codex login", "codex login --device-auth")
	assert.NotContains(t, body, "/root/.codex", "no host path reaches the agent")
	require.Len(t, told, 1)
	assert.Equal(t, Rejection{Slot: slot.Name, Host: "chatgpt.com", Status: 401, At: t0.Add(time.Second), print: told[0].print}, told[0])
	assert.Contains(t, h.srv.Rejections(), slot.Name)
	assert.Contains(t, h.logs.String(), "upstream rejected the host credential")

	// A second 401 for the same value is not news.
	h.sendLogs(t, logEntry(slot, "chatgpt.com", 401, "via_upstream", t0.Add(time.Second)))
	assert.Len(t, told, 1)

	// The host logs in again: a new value, sent at once.
	renewed := codexSlot(tokenB, t0.Add(2*time.Hour))
	h.srv.SetSlots([]config.Slot{renewed})
	requireInjected(t, h.headers(t, md), "Bearer "+tokenB)
	assert.Empty(t, h.srv.Rejections())
}

// TestRejectionHoldEnds: an upstream that refused by mistake costs the
// bottle the hold, not its login: afterwards requests go through again.
func TestRejectionHoldEnds(t *testing.T) {
	h := newHarness(t)
	slot := envSlot(tokenB)
	h.srv.SetSlots([]config.Slot{slot})
	md := route("api.github.com", slot.Name, "token")
	h.sendLogs(t, logEntry(slot, "api.github.com", 401, "via_upstream", t0))
	requireRefused(t, h.headers(t, md), codeRejected, "api.github.com rejected the host variable GITHUB_TOKEN")
	h.clock.Set(t0.Add(rejectionHold))
	requireInjected(t, h.headers(t, md), "token "+tokenB)
}

// TestRejectionIgnored: only the upstream's own 401 to the value the slot
// holds now counts, and only from a tagged credential log.
func TestRejectionIgnored(t *testing.T) {
	slot := codexSlot(tokenA, t0.Add(time.Hour))
	tests := []struct {
		name  string
		entry *accesslogdatav3.HTTPAccessLogEntry
	}{
		{"403", logEntry(slot, "chatgpt.com", 403, "via_upstream", t0)},
		{"200", logEntry(slot, "chatgpt.com", 200, "via_upstream", t0)},
		{"a local 401", logEntry(slot, "chatgpt.com", 401, "ext_proc_error_401", t0)},
		{"no tags", &accesslogdatav3.HTTPAccessLogEntry{
			CommonProperties: &accesslogdatav3.AccessLogCommon{StartTime: timestamppb.New(t0)},
			Response:         &accesslogdatav3.HTTPResponseProperties{ResponseCode: wrapperspb.UInt32(401), ResponseCodeDetails: "via_upstream"},
		}},
		{"unknown slot", logEntry(config.Slot{Name: "EGRESS_TOKEN_9", Source: slot.Source}, "chatgpt.com", 401, "via_upstream", t0)},
		{"another source", logEntry(envSlot(tokenA), "chatgpt.com", 401, "via_upstream", t0)},
		{"a request older than the value", logEntry(slot, "chatgpt.com", 401, "via_upstream", t0.Add(-time.Second))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.srv.SetSlots([]config.Slot{slot})
			if tt.name == "another source" {
				tt.entry.CommonProperties.CustomTags[extprocapi.TagSlot] = slot.Name
			}
			h.sendLogs(t, tt.entry)
			assert.Empty(t, h.srv.Rejections())
			requireInjected(t, h.headers(t, route("chatgpt.com", slot.Name, "Bearer")), "Bearer "+tokenA)
		})
	}
}

// TestRejectionSurvivesUnchangedReload: a reload that keeps the value
// keeps the refusal (and when the value was first seen).
func TestRejectionSurvivesUnchangedReload(t *testing.T) {
	h := newHarness(t)
	slot := codexSlot(tokenA, t0.Add(time.Hour))
	h.srv.SetSlots([]config.Slot{slot})
	h.clock.Set(t0.Add(time.Minute))
	h.sendLogs(t, logEntry(slot, "chatgpt.com", 401, "via_upstream", t0.Add(time.Second)))
	h.srv.SetSlots([]config.Slot{slot, envSlot(tokenB)})
	requireRefused(t, h.headers(t, route("chatgpt.com", slot.Name, "Bearer")), codeRejected)
}
