package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHeaderAuth(t *testing.T) {
	h := newHost(routes("    - host: g.example.test\n      auth: {header: X-Goog-Api-Key, token_ref: GEMINI_KEY}\n"))
	h.env["GEMINI_KEY"] = "gem-secret-value"
	p := h.mustLoad(t)
	require.Equal(t, &Auth{Header: "x-goog-api-key", Slot: "EGRESS_TOKEN_0"}, p.Routes[0].Auth)
	require.Equal(t, []string{"authorization", "proxy-authorization", "x-api-key", "x-goog-api-key"}, p.StripHeaders())

	for name, c := range map[string]struct{ auth, want string }{
		"both":     {"{scheme: Bearer, header: x-api-key, token_ref: A}", ":5: egress.routes[0].auth.header: set scheme"},
		"reserved": {"{header: Host, token_ref: A}", ":5: egress.routes[0].auth.header: \"Host\" cannot carry a credential"},
		"pseudo":   {"{header: ':authority', token_ref: A}", "cannot carry a credential"},
		"neither":  {"{token_ref: A}", ":5: egress.routes[0].auth.scheme: required"},
	} {
		t.Run(name, func(t *testing.T) {
			errs := newHost(routes("    - host: g.example.test\n      auth: " + c.auth + "\n")).loadErrors(t)
			require.NotEmpty(t, errs)
			require.Contains(t, errs[0], c.want)
		})
	}
}
