package extproc

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/codexauth"
	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/extprocapi"
)

func TestAnswerCodexRefresh(t *testing.T) {
	exp := t0.Add(2 * time.Hour).Truncate(time.Second)
	host, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"exp":                         exp.Unix(),
		"https://api.openai.com/auth": map[string]any{"chatgpt_account_id": "acct-42", "chatgpt_plan_type": "pro"},
	}).SignedString([]byte("host-key"))
	require.NoError(t, err)
	h := newHarness(t)
	h.srv.SetSlots([]config.Slot{codexSlot(host, exp)})
	md := []string{extprocapi.MetadataHost, "auth.openai.com", extprocapi.MetadataAnswer, config.AnswerCodexRefresh,
		extprocapi.MetadataSlot, "EGRESS_TOKEN_0", extprocapi.MetadataSource, codexSlot("", time.Time{}).Source.String()}

	ir := h.headers(t, md).GetImmediateResponse()
	require.NotNil(t, ir, "a refresh is answered, never forwarded")
	require.EqualValues(t, 200, ir.GetStatus().GetCode())
	require.NotContains(t, string(ir.GetBody()), host)
	var tokens struct{ AccessToken, IDToken, RefreshToken string }
	require.NoError(t, json.Unmarshal(ir.GetBody(), &struct {
		A *string `json:"access_token"`
		I *string `json:"id_token"`
		R *string `json:"refresh_token"`
	}{&tokens.AccessToken, &tokens.IDToken, &tokens.RefreshToken}))
	claims := jwt.MapClaims{}
	_, _, err = jwt.NewParser().ParseUnverified(tokens.AccessToken, claims)
	require.NoError(t, err)
	gotExp, err := claims.GetExpirationTime()
	require.NoError(t, err)
	require.Equal(t, t0.Add(codexauth.PlaceholderLifetime), gotExp.UTC(), "the placeholder's own lifetime, not the host token's")
	require.Equal(t, "acct-42", claims["https://api.openai.com/auth"].(map[string]any)["chatgpt_account_id"])
	require.NotEmpty(t, tokens.RefreshToken)

	// An expired host login is refused, not papered over with placeholders.
	h.srv.SetSlots([]config.Slot{codexSlot(host, t0.Add(-time.Minute))})
	requireRefused(t, h.headers(t, md), codeExpired, "codex login --device-auth")
}

// TestRefreshAnswersBounded: a bottle refreshing in a loop gets its burst
// of answers, then refusals that say why, then one answer per interval.
func TestRefreshAnswersBounded(t *testing.T) {
	exp := t0.Add(2 * time.Hour)
	host := hostAccessToken(t, exp)
	h := newHarness(t)
	h.srv.SetSlots([]config.Slot{codexSlot(host, exp)})
	md := []string{extprocapi.MetadataHost, "auth.openai.com", extprocapi.MetadataAnswer, config.AnswerCodexRefresh,
		extprocapi.MetadataSlot, "EGRESS_TOKEN_0", extprocapi.MetadataSource, codexSlot("", time.Time{}).Source.String()}

	for i := range refreshBurst {
		require.EqualValues(t, 200, h.headers(t, md).GetImmediateResponse().GetStatus().GetCode(), "answer %d", i)
	}
	body := requireRefused(t, h.headers(t, md), codeRefreshLimited, "too many token refreshes")
	require.NotContains(t, body, host)
	h.clock.Set(t0.Add(refreshEvery))
	require.EqualValues(t, 200, h.headers(t, md).GetImmediateResponse().GetStatus().GetCode())
	requireRefused(t, h.headers(t, md), codeRefreshLimited)
}

func TestAnswerFailsClosed(t *testing.T) {
	h := newHarness(t)
	// An answer binding without a slot must not fall through to forwarding.
	requireDenied(t, h.headers(t, []string{extprocapi.MetadataHost, "auth.openai.com", extprocapi.MetadataAnswer, config.AnswerCodexRefresh}),
		500, codeMisconfigured)

	// No signing key: refused, not a crash.
	h.srv.minter = nil
	h.srv.SetSlots([]config.Slot{codexSlot("not-used", t0.Add(time.Hour))})
	md := []string{extprocapi.MetadataHost, "auth.openai.com", extprocapi.MetadataAnswer, config.AnswerCodexRefresh,
		extprocapi.MetadataSlot, "EGRESS_TOKEN_0", extprocapi.MetadataSource, codexSlot("", time.Time{}).Source.String()}
	requireRefused(t, h.headers(t, md), codeRefreshFailed, "signing key")
}
