package leakcheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFind(t *testing.T) {
	const secret = "sk-0123456789abcdefghij"
	tests := []struct {
		name, text, want string
	}{
		{"absent", "nothing to see", ""},
		{"whole", "key=" + secret, secret[:MinRun]},
		{"a run in the middle", "x" + secret[5:5+MinRun] + "y", secret[5 : 5+MinRun]},
		{"one short of a run", secret[3 : 3+MinRun-1], ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Find(tt.text, secret, MinRun))
		})
	}
	assert.Equal(t, "short", Find("a short one", "short", MinRun), "a short secret is looked for whole")
	assert.Empty(t, Find("anything", "", MinRun))
}

func testJWT(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte("k"))
	require.NoError(t, err)
	return tok
}

func TestLeak(t *testing.T) {
	tok := testJWT(t, jwt.MapClaims{
		"sub":    "google-oauth2|1234567890",
		"aud":    []string{"https://api.openai.com/v1"},
		"nested": map[string]any{"account": "acct-0123456789ab", "short": "pro"},
		"exp":    1795861800,
	})
	const public = "https://api.openai.com/v1"
	parts := strings.Split(tok, ".")
	tests := []struct {
		name, text string
		leak       bool
	}{
		{"nothing", "A=1", false},
		{"the header part", "h=" + parts[0], true},
		{"a run of the payload part", "p=" + parts[1][10:10+MinRun], true},
		{"a run of the signature", "s=" + parts[2][3:3+MinRun], true},
		{"a claim value, decoded", `{"account":"acct-0123456789ab"}`, true},
		{"a copied value", `{"aud":"https://api.openai.com/v1"}`, false},
		{"a short value", `{"plan":"pro"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.leak, Leak(tt.text, tok, public) != "")
		})
	}
	assert.NotEmpty(t, Leak("opaque-refresh-token-value", "opaque-refresh-token-value"))
}

func TestOutputsMasksAndDecodesJWTs(t *testing.T) {
	tok := testJWT(t, jwt.MapClaims{"email": "x@y.invalid"})
	sig := tok[strings.LastIndex(tok, ".")+1:]
	assert.Equal(t, map[string]string{
		"f":                  `{"a":"<jwt[0]>","b":"<jwt[1]>","c":"not.a-jwt"}`,
		"f jwt[0] header":    `{"alg":"HS256","typ":"JWT"}`,
		"f jwt[0] payload":   `{"email":"x@y.invalid"}`,
		"f jwt[0] signature": sig,
		"f jwt[1] header":    `{"alg":"HS256","typ":"JWT"}`,
		"f jwt[1] payload":   `{"email":"x@y.invalid"}`,
		"f jwt[1] signature": sig,
	}, Outputs("f", `{"a":"`+tok+`","b":"`+tok+`","c":"not.a-jwt"}`))
}

func TestTexts(t *testing.T) {
	dir := t.TempDir()
	tok := testJWT(t, jwt.MapClaims{"email": "x@y.invalid"})
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "codex"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "env"), []byte("A=1\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "codex", "auth.json"), []byte(tok), 0o600))

	got, err := Texts(dir)
	require.NoError(t, err)
	assert.Equal(t, "A=1\n", got["env"])
	assert.Equal(t, "<jwt[0]>", got["codex/auth.json"])
	assert.Equal(t, `{"email":"x@y.invalid"}`, got["codex/auth.json jwt[0] payload"])
	assert.Len(t, got, 5)
}
