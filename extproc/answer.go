package extproc

import (
	"context"
	"log/slog"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/egressgate/egressgate/codexauth"
	"github.com/egressgate/egressgate/config"
)

const codeRefreshFailed = "egressgate_refresh_failed"

// answerRefresh answers Codex's OAuth refresh itself. The agent holds only
// placeholder tokens; when the host's login has moved on, the agent's
// placeholder expires and Codex asks auth.openai.com for new tokens. The
// answer is fresh placeholders mirroring the host's current login (its
// expiry, account and plan), and the agent's refresh token, a placeholder
// too, never leaves the egress.
func (s *Server) answerRefresh(ctx context.Context, b binding, slot config.Slot) *extprocv3.ProcessingResponse {
	if s.minter == nil {
		return s.deny(ctx, b, &denial{status: typev3.StatusCode_ServiceUnavailable, code: codeRefreshFailed,
			body: "egressgate: cannot answer the token refresh for " + b.label() + ": no placeholder signing key; see egressgate's log on the host\n"})
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
		return s.deny(ctx, b, &denial{status: typev3.StatusCode_ServiceUnavailable, code: codeRefreshFailed,
			body: "egressgate: cannot answer the token refresh for " + b.label() + ": " + err.Error() + "; " + slot.Source.Fix() + "\n"})
	}
	s.logger.LogAttrs(ctx, slog.LevelInfo, "answered codex token refresh with placeholders",
		slog.String("host", b.host), slog.String("slot", b.slot), slog.Time("host_token_expiry", claims.Expiry))
	s.observe("answer")
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{
		ImmediateResponse: &extprocv3.ImmediateResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode_OK},
			Headers: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
				overwrite("content-type", "application/json"),
				overwrite("cache-control", "no-store"),
			}},
			Body:    body,
			Details: "egressgate_refresh_answered",
		},
	}}
}
