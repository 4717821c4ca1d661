package extproc

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"golang.org/x/time/rate"

	"github.com/egressgate/egressgate/codexauth"
	"github.com/egressgate/egressgate/config"
)

const (
	codeRefreshFailed  = "egressgate_refresh_failed"
	codeRefreshLimited = "egressgate_refresh_limited"
)

// Refresh answers are bounded per bottle: refreshBurst at once, then one
// every refreshEvery. A placeholder lasts hours (codexauth.
// PlaceholderLifetime), so an agent needs one answer per Codex process per
// working day; anything near the bound is a client refreshing in a loop,
// and answering it faster would only feed the loop.
const (
	refreshBurst = 10
	refreshEvery = 30 * time.Second
)

var refreshRate = rate.Every(refreshEvery)

// answerRefresh answers Codex's OAuth refresh itself. The agent holds only
// placeholder tokens; when its placeholder runs out, Codex asks
// auth.openai.com for new tokens. The answer is fresh placeholders
// mirroring the host's current login (account and plan), and the agent's
// refresh token, a placeholder too, never leaves the egress. The host
// login's usability was checked before (usableSlot): a host login that is
// expired, gone or rejected is refused, never papered over.
func (s *Server) answerRefresh(ctx context.Context, b binding, slot config.Slot, h *extprocv3.HttpHeaders) *extprocv3.ProcessingResponse {
	if s.minter == nil {
		return s.deny(ctx, b, h, &denial{status: typev3.StatusCode_ServiceUnavailable, code: codeRefreshFailed,
			reason: "cannot answer the token refresh for " + b.label() + ": no placeholder signing key",
			fix:    "see egressgate's log on the host"})
	}
	if !s.refreshes.AllowN(s.now(), 1) {
		return s.deny(ctx, b, h, &denial{status: typev3.StatusCode_TooManyRequests, code: codeRefreshLimited, credential: true,
			reason: fmt.Sprintf("too many token refreshes from this bottle (more than %d, then one per %s); "+
				"the agent's placeholder login needs one refresh per %s while the host login is valid",
				refreshBurst, refreshEvery, codexauth.PlaceholderLifetime),
			fix: "check the agent for a refresh loop, then retry in a minute"})
	}
	claims, err := codexauth.ClaimsFromAccessToken(slot.Value.Reveal())
	var body []byte
	if err == nil {
		var tokens codexauth.Tokens
		if tokens, err = s.minter.Tokens(claims, s.now()); err == nil {
			body, err = codexauth.RefreshResponse(tokens)
		}
	}
	if err != nil {
		// The errors are codexauth's fixed messages, never token bytes.
		return s.deny(ctx, b, h, &denial{status: typev3.StatusCode_ServiceUnavailable, code: codeRefreshFailed, credential: true,
			reason: "cannot answer the token refresh for " + b.label() + ": " + err.Error(),
			fix:    slot.Source.AgentFix()})
	}
	s.logger.LogAttrs(ctx, slog.LevelInfo, "answered codex token refresh with placeholders",
		slog.String("host", b.Host), slog.String("slot", b.Slot), slog.Time("host_token_expiry", claims.Expiry))
	s.observe("answer")
	return immediate(typev3.StatusCode_OK, "egressgate_refresh_answered", "application/json", body, nil)
}

// refuseRefresh answers Codex's refresh while the host login is unusable
// (expired, logged out, not set). Codex never shows a token endpoint's
// text, but it stops at once, with a fitting sentence of its own, on the
// OAuth codes below; any other answer it retries dozens of times a second.
// Its turn then goes on and meets the refusal whose text it does show.
func (s *Server) refuseRefresh(ctx context.Context, b binding, d *denial) *extprocv3.ProcessingResponse {
	code := "refresh_token_invalidated" // "… your refresh token was revoked"
	if d.code == codeExpired {
		code = "refresh_token_expired"
	}
	body, _ := json.Marshal(map[string]any{"error": map[string]string{
		"code": code, "type": "invalid_request_error", "message": strings.TrimSuffix(d.body(), "\n"),
	}})
	s.observe("deny")
	s.logger.LogAttrs(ctx, slog.LevelWarn, "ext_proc request denied",
		slog.String("host", b.Host), slog.String("slot", b.Slot),
		slog.String("action", "deny"), slog.String("reason", d.code), slog.Int("status", 401))
	return immediate(typev3.StatusCode_Unauthorized, d.code, "application/json", body, nil)
}

// answerRouting answers Codex's workspace routing discovery itself while
// the host credential is refused. Codex shows nothing of a refused
// discovery: it retries for 13 s and says "workspace routing discovery
// failed". It does show a refused turn's text word for word, so it is
// pointed at chatgpt.com, the one backend the bottle allows, where its
// turn meets the refusal that says why and what to do. Nothing reaches
// the upstream.
func (s *Server) answerRouting(ctx context.Context, b binding, d *denial, r request) *extprocv3.ProcessingResponse {
	body, _ := json.Marshal(map[string]any{"accounts": []map[string]string{{
		"id": r.account, "workspace_backend_origin": "https://" + hostChatGPT, "account_routing_override": "NO_CONSTRAINT",
	}}})
	s.observe("answer")
	s.logger.LogAttrs(ctx, slog.LevelWarn, "answered codex routing discovery; its turn will be refused",
		slog.String("host", b.Host), slog.String("slot", b.Slot), slog.String("reason", d.code))
	return immediate(typev3.StatusCode_OK, "egressgate_routing_answered", "application/json", body, nil)
}
