package extproc

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/extprocapi"
)

// TestRefusalShapes: each client gets a credential refusal in the shape
// it shows to its person at once (measured with the real CLIs): Codex a
// 400 with text, Claude Code (any Anthropic client) a 403 with Anthropic's
// error JSON, everyone else a 403 with text; never a 5xx they retry.
func TestRefusalShapes(t *testing.T) {
	h := newHarness(t)
	h.srv.SetSlots([]config.Slot{codexSlot(tokenA, t0.Add(-time.Minute))})
	want := "the host's Codex login (EGRESS_TOKEN_0) expired at 2026-03-01T11:59:00Z; run `codex login --device-auth` on the host"

	codex := h.headersWith(t, route("chatgpt.com", "EGRESS_TOKEN_0", "Bearer"), ":method", "POST", ":path", "/backend-api/codex/responses")
	requireDenied(t, codex, 400, codeExpired, want)

	anthropic := h.headersWith(t, route("api.anthropic.com", "EGRESS_TOKEN_0", "Bearer"), ":method", "POST", ":path", "/v1/messages?beta=true", "anthropic-version", "2023-06-01")
	ir := anthropic.GetImmediateResponse()
	require.NotNil(t, ir)
	assert.EqualValues(t, 403, ir.GetStatus().GetCode())
	assert.Equal(t, "application/json", header(anthropic, "content-type"))
	assert.Equal(t, "false", header(anthropic, "x-should-retry"))
	var body struct {
		Type  string `json:"type"`
		Error struct{ Type, Message string }
	}
	require.NoError(t, json.Unmarshal(ir.GetBody(), &body))
	assert.Equal(t, "error", body.Type)
	assert.Equal(t, "permission_error", body.Error.Type)
	assert.Contains(t, body.Error.Message, want)
	assert.NotContains(t, body.Error.Message, "revoked", "Claude Code replaces a message about revoked tokens with its own")

	other := h.headersWith(t, route("api.github.com", "EGRESS_TOKEN_0", "Bearer"), ":method", "GET", ":path", "/user")
	requireDenied(t, other, 403, codeExpired, want)

	// A reload in flight is worth retrying: it keeps its 503.
	moved := envSlot(tokenB)
	moved.Name = "EGRESS_TOKEN_0"
	h.srv.SetSlots([]config.Slot{moved})
	md := append(route("chatgpt.com", "EGRESS_TOKEN_0", "Bearer"), extprocapi.MetadataSource, codexSlot("", time.Time{}).Source.String())
	requireDenied(t, h.headers(t, md), 503, codeMoved)
}

// TestCodexRoutingAnsweredWhileRefused: with the host credential refused,
// Codex's routing discovery is answered by the egress (Codex would show
// nothing of a refused one) so that its turn meets the refusal it shows.
// With a usable credential the discovery goes to the upstream.
func TestCodexRoutingAnsweredWhileRefused(t *testing.T) {
	h := newHarness(t)
	md := route("chatgpt.com", "EGRESS_TOKEN_0", "Bearer")
	discovery := []string{":method", "GET", ":path", "/backend-api/wham/accounts/check", "chatgpt-account-id", "acct-42"}

	h.srv.SetSlots([]config.Slot{codexSlot(tokenA, t0.Add(time.Hour))})
	requireInjected(t, h.headersWith(t, md, discovery...), "Bearer "+tokenA)

	h.srv.SetSlots([]config.Slot{codexSlot(tokenA, t0.Add(-time.Hour))})
	ir := h.headersWith(t, md, discovery...).GetImmediateResponse()
	require.NotNil(t, ir)
	assert.EqualValues(t, 200, ir.GetStatus().GetCode())
	assert.JSONEq(t, `{"accounts":[{"id":"acct-42","workspace_backend_origin":"https://chatgpt.com","account_routing_override":"NO_CONSTRAINT"}]}`, string(ir.GetBody()))
	assert.NotContains(t, string(ir.GetBody()), tokenA)

	// Without an account to name, the discovery is refused like the rest.
	requireDenied(t, h.headersWith(t, md, ":method", "GET", ":path", "/backend-api/wham/accounts/check"), 400, codeExpired)
}

// TestRefreshWhileRefused: Codex's refresh, while the host login cannot
// be used, is refused with the OAuth codes Codex stops on; after an
// upstream rejection it is answered, so the retried turn meets the reason.
func TestRefreshWhileRefused(t *testing.T) {
	host := hostAccessToken(t, t0.Add(time.Hour))
	md := []string{extprocapi.MetadataHost, "auth.openai.com", extprocapi.MetadataAnswer, config.AnswerCodexRefresh,
		extprocapi.MetadataSlot, "EGRESS_TOKEN_0", extprocapi.MetadataSource, codexSlot("", time.Time{}).Source.String()}
	loggedOut := codexSlot("", time.Time{})
	loggedOut.Problem = "gone"
	tests := []struct {
		name  string
		slot  config.Slot
		code  string
		oauth string
	}{
		{"expired", codexSlot(host, t0.Add(-time.Second)), codeExpired, "refresh_token_expired"},
		{"logged out", loggedOut, codeLoggedOut, "refresh_token_invalidated"},
		{"never set", codexSlot("", time.Time{}), codeEmpty, "refresh_token_invalidated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.srv.SetSlots([]config.Slot{tt.slot})
			resp := h.headers(t, md)
			ir := resp.GetImmediateResponse()
			require.NotNil(t, ir)
			assert.EqualValues(t, 401, ir.GetStatus().GetCode())
			assert.Equal(t, tt.code, ir.GetDetails())
			var body struct {
				Error struct{ Code, Message string }
			}
			require.NoError(t, json.Unmarshal(ir.GetBody(), &body))
			assert.Equal(t, tt.oauth, body.Error.Code)
			assert.Contains(t, body.Error.Message, "codex login --device-auth")
		})
	}

	t.Run("rejected upstream", func(t *testing.T) {
		h := newHarness(t)
		slot := codexSlot(host, t0.Add(time.Hour))
		h.srv.SetSlots([]config.Slot{slot})
		h.sendLogs(t, logEntry(slot, "chatgpt.com", 401, "via_upstream", t0))
		assert.EqualValues(t, 200, h.headers(t, md).GetImmediateResponse().GetStatus().GetCode())
		requireDenied(t, h.headersWith(t, route("chatgpt.com", "EGRESS_TOKEN_0", "Bearer"), ":method", "POST", ":path", "/backend-api/codex/responses"),
			400, codeRejected, "chatgpt.com rejected the host's Codex login")
	})
}
