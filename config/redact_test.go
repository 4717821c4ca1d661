package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestPolicyNeverShowsTokens formats a loaded Policy every way Go code
// commonly prints or logs a value, and checks that no credential appears:
// neither the forwarded access token, nor an env or file token, nor the
// refresh token that only passed through the parser (invariant 4).
func TestPolicyNeverShowsTokens(t *testing.T) {
	access := accessToken(t, testNow.Add(time.Hour), nil)
	const envToken = "ghp_ENVTOKENVALUE0123456789"
	const fileToken = "ghp_FILETOKENVALUE0123456789"
	h := newHost(codexManifest("true") + "egress:\n  routes:\n    - host: api.github.com\n      auth: {scheme: Bearer, token_ref: GITHUB_TOKEN}\n" +
		"    - host: files.test\n      auth: {scheme: token, token_file: secrets/tok}\n")
	h.files[testAuthJSON] = authJSON(t, access)
	h.files["/bottle/secrets/tok"] = fileToken + "\n"
	h.env["GITHUB_TOKEN"] = envToken
	p := h.mustLoad(t)
	require.Equal(t, access, p.Slots[0].Value.Reveal(), "precondition: the token is loaded")
	require.Equal(t, envToken, p.Slots[1].Value.Reveal(), "precondition: the token is loaded")
	require.Equal(t, fileToken, p.Slots[2].Value.Reveal(), "precondition: the token is loaded")

	outputs := map[string]string{
		"%v":       fmt.Sprintf("%v", p),
		"%+v":      fmt.Sprintf("%+v", p),
		"%#v":      fmt.Sprintf("%#v", p),
		"%v value": fmt.Sprintf("%v", *p),
		"%s":       fmt.Sprintf("%s", p.Slots),
		"%q":       fmt.Sprintf("%q", p.Slots),
		"%x":       fmt.Sprintf("%x", p.Slots[0].Value),
		"%#v slot": fmt.Sprintf("%#v", p.Slots[0]),
	}
	js, err := json.Marshal(p)
	require.NoError(t, err)
	outputs["json"] = string(js)

	var jsonLog, textLog bytes.Buffer
	slog.New(slog.NewJSONHandler(&jsonLog, nil)).Info("loaded", "policy", p, "slots", p.Slots, "slot", p.Slots[0], "value", p.Slots[0].Value)
	slog.New(slog.NewTextHandler(&textLog, nil)).Info("loaded", "policy", p, "slot", p.Slots[0], "value", p.Slots[0].Value)
	outputs["slog json"] = jsonLog.String()
	outputs["slog text"] = textLog.String()

	for name, out := range outputs {
		t.Run(name, func(t *testing.T) {
			require.NotEmpty(t, out)
			for _, secret := range []string{access, envToken, fileToken, testRefresh} {
				require.NotContains(t, out, secret)
			}
		})
	}
	require.Contains(t, outputs["%v"], "<redacted:EGRESS_TOKEN_0 exp=2026-11-28T10:00:00Z>", "slots print their redacted form")
}
