package codexauth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/agentenv/leakcheck"
)

var (
	testNow = time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	testExp = testNow.Add(90 * time.Minute)
)

const (
	testAccount = "4f1c2a9e-7b3d-4e8a-9c1f-2d5b6a7e8f90"
	testPlan    = "pro"
	testUser    = "user-Hq3kZ9pLmN2xR7tVw8Yc"
)

// hostAuth and hostClaims shape a host token unlike the placeholders:
// other claims, another order, another algorithm. Placeholders copy a few
// claim values by design, so only a host token laid out like OpenAI's,
// not like ours, shows that nothing else is copied.
type hostAuth struct {
	UserID    string `json:"chatgpt_user_id,omitempty"`
	PlanType  string `json:"chatgpt_plan_type,omitempty"`
	AccountID string `json:"chatgpt_account_id,omitempty"`
	Compute   string `json:"chatgpt_compute_residency"`
}

type hostClaims struct {
	Auth    hostAuth `json:"https://api.openai.com/auth"`
	Profile struct {
		Email string `json:"email"`
	} `json:"https://api.openai.com/profile"`
	Scopes []string `json:"scp"`
	Nonce  string   `json:"jti"`
	jwt.RegisteredClaims
}

// hostToken is a host access token with the test facts, expiring at exp.
func hostToken(t *testing.T, exp time.Time, auth hostAuth) string {
	t.Helper()
	c := hostClaims{Auth: auth, Scopes: []string{"openid", "profile", "email", "offline_access"}, Nonce: "0d9a8b7c-host-nonce"}
	c.Profile.Email = "someone@example.com"
	c.RegisteredClaims = jwt.RegisteredClaims{
		Issuer:    "https://auth.openai.com",
		Subject:   "google-oauth2|104729384756102938475",
		Audience:  jwt.ClaimStrings{"https://api.openai.com/v1"},
		IssuedAt:  jwt.NewNumericDate(exp.Add(-10 * 24 * time.Hour)),
		ExpiresAt: jwt.NewNumericDate(exp),
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte("host signing key, not ours"))
	require.NoError(t, err)
	return s
}

func testAuth() hostAuth {
	return hostAuth{UserID: testUser, PlanType: testPlan, AccountID: testAccount, Compute: "us"}
}

func testClaims() Claims {
	return Claims{Expiry: testExp, AccountID: testAccount, PlanType: testPlan, UserID: testUser}
}

func mint(t *testing.T, c Claims) (*Minter, Tokens) {
	t.Helper()
	m, err := NewMinter()
	require.NoError(t, err)
	tok, err := m.Tokens(c, testNow)
	require.NoError(t, err)
	return m, tok
}

func TestClaimsFromAccessToken(t *testing.T) {
	c, err := ClaimsFromAccessToken(hostToken(t, testExp, testAuth()))
	require.NoError(t, err)
	assert.Equal(t, testClaims(), c)

	// Older tokens name the user only as user_id.
	legacy := testAuth()
	legacy.UserID = ""
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"exp": testExp.Unix(), authClaimName: map[string]any{"chatgpt_account_id": testAccount, "user_id": "user-legacy"},
	}).SignedString([]byte("k"))
	require.NoError(t, err)
	c, err = ClaimsFromAccessToken(tok)
	require.NoError(t, err)
	assert.Equal(t, Claims{Expiry: testExp, AccountID: testAccount, UserID: "user-legacy"}, c)
}

// TestClaimsErrorsNeverQuoteTheToken feeds tokens that fail in each way
// and checks the message names the problem, not the token.
func TestClaimsErrorsNeverQuoteTheToken(t *testing.T) {
	noExp, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		authClaimName: map[string]any{"chatgpt_account_id": testAccount},
	}).SignedString([]byte("k"))
	require.NoError(t, err)
	tests := []struct{ name, token, want string }{
		{"not a JWT", "sk-not-a-jwt-but-secret-0123456789", "not a JWT"},
		{"bad payload", "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXBheWxvYWQtYnl0ZXM.c2ln", "not a JWT"},
		{"no exp", noExp, "no expiry"},
		{"no account", hostToken(t, testExp, hostAuth{PlanType: testPlan}), "no ChatGPT account"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ClaimsFromAccessToken(tt.token)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Empty(t, leakcheck.Find(err.Error(), tt.token, leakcheck.MinRun), "error quotes the token: %v", err)
			assert.NotContains(t, err.Error(), "secret")
		})
	}
}

// TestPlaceholdersCarryTheHostFacts parses the placeholders the way Codex
// and chatgpt.com would see them and round-trips their claims.
func TestPlaceholdersCarryTheHostFacts(t *testing.T) {
	m, tok := mint(t, testClaims())
	placeholderExp := testNow.Add(PlaceholderLifetime)
	want := testClaims()
	want.Expiry = placeholderExp

	c, err := ClaimsFromAccessToken(tok.AccessToken)
	require.NoError(t, err)
	assert.Equal(t, want, c, "access token round trip")
	c, err = ClaimsFromAccessToken(tok.IDToken)
	require.NoError(t, err)
	assert.Equal(t, want, c, "id token round trip")

	access := verify(t, m, tok.AccessToken)
	assert.Equal(t, "egressgate-placeholder", access["iss"])
	assert.Equal(t, []any{"https://api.openai.com/v1"}, access["aud"])
	assert.Equal(t, float64(testNow.Unix()), access["iat"])
	assert.Equal(t, float64(placeholderExp.Unix()), access["exp"])
	assert.NotEmpty(t, access["sub"])
	assert.Equal(t, true, access["egressgate_placeholder"])
	assert.Equal(t, map[string]any{"chatgpt_account_id": testAccount, "chatgpt_plan_type": testPlan, "chatgpt_user_id": testUser}, access[authClaimName])

	id := verify(t, m, tok.IDToken)
	assert.Equal(t, "agent@bottle.invalid", id["email"])
	assert.Equal(t, access[authClaimName], id[authClaimName])
	assert.Equal(t, float64(placeholderExp.Unix()), id["exp"])

	assert.True(t, strings.HasPrefix(tok.RefreshToken, PlaceholderRefreshPrefix))
	_, again := mint(t, testClaims())
	assert.NotEqual(t, tok.RefreshToken, again.RefreshToken, "refresh tokens are random")
}

// verify checks a placeholder is an ES256 JWT signed by m and returns its
// claims.
func verify(t *testing.T, m *Minter, token string) jwt.MapClaims {
	t.Helper()
	claims := jwt.MapClaims{}
	parsed, err := jwt.NewParser(jwt.WithValidMethods([]string{"ES256"}), jwt.WithTimeFunc(func() time.Time { return testNow })).
		ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return m.key.Public(), nil })
	require.NoError(t, err)
	require.True(t, parsed.Valid)
	return claims
}

// TestPlaceholdersHoldNoHostTokenBytes: no placeholder holds a run of the
// host token (its header, payload or signature part), nor, decoded, a run
// of any of its claim values other than the facts copied on purpose.
// leakcheck.Outputs says why placeholder JWTs are compared decoded.
func TestPlaceholdersHoldNoHostTokenBytes(t *testing.T) {
	host := hostToken(t, testExp, testAuth())
	c, err := ClaimsFromAccessToken(host)
	require.NoError(t, err)
	_, tok := mint(t, c)

	outputs := map[string]string{}
	for name, s := range map[string]string{"access": tok.AccessToken, "id": tok.IDToken, "refresh": tok.RefreshToken} {
		for k, v := range leakcheck.Outputs(name, s) {
			outputs[k] = v
		}
	}
	require.Contains(t, outputs, "access jwt[0] payload", "precondition: the placeholder decodes")
	copied := []string{testAccount, testUser, "https://api.openai.com/v1"}
	parts := strings.Split(host, ".")
	for name, out := range outputs {
		for i, part := range parts {
			assert.Empty(t, leakcheck.Find(out, part, leakcheck.MinRun), "%s holds a run of part %d of the host token", name, i)
		}
		assert.Empty(t, leakcheck.Leak(out, host, copied...), "%s holds a piece of the host token", name)
	}
}

// TestPlaceholdersNeverNearExpiry: whatever the host token has left, a
// placeholder starts with its whole lifetime, far outside the few minutes
// in which Codex refreshes before every request.
func TestPlaceholdersNeverNearExpiry(t *testing.T) {
	for _, left := range []time.Duration{time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * 24 * time.Hour} {
		c := testClaims()
		c.Expiry = testNow.Add(left)
		_, tok := mint(t, c)
		got, err := ClaimsFromAccessToken(tok.AccessToken)
		require.NoError(t, err)
		assert.Equal(t, testNow.Add(PlaceholderLifetime), got.Expiry, "host token %s from expiry", left)
	}
	assert.GreaterOrEqual(t, PlaceholderLifetime, time.Hour)
}

func TestTokensRefusesClaimsItCannotStandFor(t *testing.T) {
	m, err := NewMinter()
	require.NoError(t, err)
	tests := []struct {
		name string
		edit func(*Claims)
		want string
	}{
		{"no account", func(c *Claims) { c.AccountID = "" }, "no ChatGPT account"},
		{"no expiry", func(c *Claims) { c.Expiry = time.Time{} }, "no expiry"},
		{"expired", func(c *Claims) { c.Expiry = testNow }, "expired at 2026-11-28T09:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testClaims()
			tt.edit(&c)
			_, err := m.Tokens(c, testNow)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestAuthJSON(t *testing.T) {
	_, tok := mint(t, testClaims())
	data, err := AuthJSON(tok, testClaims(), testNow.Add(1500*time.Millisecond))
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(data, &got))
	assert.Equal(t, map[string]any{
		"auth_mode":      "chatgpt",
		"OPENAI_API_KEY": nil,
		"tokens": map[string]any{
			"id_token":      tok.IDToken,
			"access_token":  tok.AccessToken,
			"refresh_token": tok.RefreshToken,
			"account_id":    testAccount,
		},
		"last_refresh": "2026-11-28T09:00:01.5Z",
	}, got)
}

func TestRefreshResponse(t *testing.T) {
	_, tok := mint(t, testClaims())
	data, err := RefreshResponse(tok)
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(data, &got))
	assert.Equal(t, map[string]any{
		"id_token":      tok.IDToken,
		"access_token":  tok.AccessToken,
		"refresh_token": tok.RefreshToken,
	}, got)
}

// TestTokensAreRedacted prints and logs Tokens every common way; none may
// show a token, placeholder or not.
func TestTokensAreRedacted(t *testing.T) {
	_, tok := mint(t, testClaims())
	outputs := map[string]string{
		"%v":   fmt.Sprintf("%v", tok),
		"%+v":  fmt.Sprintf("%+v", tok),
		"%#v":  fmt.Sprintf("%#v", tok),
		"%s":   fmt.Sprintf("%s", tok),
		"%v &": fmt.Sprintf("%v", &tok),
		"%+v nested": fmt.Sprintf("%+v", struct {
			T Tokens
		}{tok}),
	}
	js, err := json.Marshal(map[string]any{"tokens": tok, "ptr": &tok})
	require.NoError(t, err)
	outputs["json"] = string(js)
	var jsonLog, textLog bytes.Buffer
	slog.New(slog.NewJSONHandler(&jsonLog, nil)).Info("minted", "tokens", tok)
	slog.New(slog.NewTextHandler(&textLog, nil)).Info("minted", "tokens", tok, "ptr", &tok)
	outputs["slog json"] = jsonLog.String()
	outputs["slog text"] = textLog.String()

	for name, out := range outputs {
		t.Run(name, func(t *testing.T) {
			assert.Contains(t, out, "redacted")
			for _, v := range []string{tok.IDToken, tok.AccessToken, tok.RefreshToken} {
				assert.Empty(t, leakcheck.Find(out, v, leakcheck.MinRun))
			}
			assert.NotContains(t, out, PlaceholderRefreshPrefix)
		})
	}
}
