package envoy

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRedactTokens(t *testing.T) {
	token := mintToken(t, "demo")
	tests := map[string]string{
		`"value":"Bearer ` + token + `"`:        `"value":"<redacted>"`,
		"bare " + token + " end":                "bare <redacted> end",
		"authorization: bearer abc.def/ghi=":    "authorization: <redacted>",
		"cluster xds.internal.example: timeout": "cluster xds.internal.example: timeout",
	}
	for in, want := range tests {
		require.Equal(t, want, redactTokens(in))
	}
}
