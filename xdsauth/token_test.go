package xdsauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

func TestMintVerifyRoundTrip(t *testing.T) {
	a := newAuthority(t)
	token, err := a.Mint("demo", RoleExtProc, testNow, time.Hour)
	require.NoError(t, err)

	id, err := a.Verify(token, testNow.Add(59*time.Minute))
	require.NoError(t, err)
	require.Equal(t, Identity{Node: "demo", Role: RoleExtProc}, id)

	header, claims := decodeParts(t, token)
	require.Equal(t, "ES256", header["alg"])
	require.Regexp(t, "^[0-9a-f]{24}$", claims["jti"], "each token an id of its own")
	delete(claims, "jti")
	require.Equal(t, map[string]any{
		"iss":  "egressgate",
		"sub":  "demo",
		"aud":  []any{"egressgate-xds"},
		"iat":  float64(testNow.Unix()),
		"exp":  float64(testNow.Add(time.Hour).Unix()),
		"role": "extproc",
	}, claims)
	again, err := a.Mint("demo", RoleExtProc, testNow, time.Hour)
	require.NoError(t, err)
	require.NotEqual(t, token, again, "two tokens minted in the same second differ")
}

func decodeParts(t *testing.T, token string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	require.Len(t, parts, 3)
	for i, out := range []*map[string]any{&header, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(raw, out))
	}
	return header, claims
}

func TestMintRejectsBadInput(t *testing.T) {
	a := newAuthority(t)
	for _, node := range []string{"", "Demo", "../etc", "a/b", "a\nb"} {
		_, err := a.Mint(node, RoleEnvoy, testNow, time.Hour)
		require.ErrorContains(t, err, "node id", "node %q", node)
	}
	_, err := a.Mint("demo", RoleEnvoy, testNow, 0)
	require.ErrorContains(t, err, "ttl")
	_, err = a.Mint("demo", roleAudit, testNow, time.Hour)
	require.ErrorContains(t, err, "role")
}

// sign builds a token with any algorithm and claims, the way an attacker
// holding a library like ours would.
func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.Claims) string {
	t.Helper()
	token, err := jwt.NewWithClaims(method, claims).SignedString(key)
	require.NoError(t, err)
	return token
}

func validClaims() claims {
	return claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    "egressgate",
			Subject:   "demo",
			Audience:  jwt.ClaimStrings{Audience},
			IssuedAt:  jwt.NewNumericDate(testNow),
			ExpiresAt: jwt.NewNumericDate(testNow.Add(time.Hour)),
		},
		Role: RoleEnvoy,
	}
}

func withClaims(f func(*jwt.RegisteredClaims)) claims {
	c := validClaims()
	f(&c.RegisteredClaims)
	return c
}

func withRole(role Role) claims {
	c := validClaims()
	c.Role = role
	return c
}

// roleless is a token as egressgate minted them before roles: valid in
// every other way.
func roleless(t *testing.T, a *Authority, node string) string {
	t.Helper()
	c := validClaims()
	c.Subject = node
	c.ExpiresAt = jwt.NewNumericDate(testNow.Add(365 * 24 * time.Hour))
	return sign(t, jwt.SigningMethodES256, a.key, c.RegisteredClaims)
}

func publicKeyPEM(t *testing.T, a *Authority) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&a.key.PublicKey)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func TestVerifyRejects(t *testing.T) {
	a := newAuthority(t)
	other := newAuthority(t)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	hmacKey := make([]byte, 32)
	_, err = rand.Read(hmacKey)
	require.NoError(t, err)
	good := sign(t, jwt.SigningMethodES256, a.key, validClaims())
	parts := strings.Split(good, ".")
	_, otherClaims := decodeParts(t, good)
	otherClaims["sub"] = "other"
	swapped, err := json.Marshal(otherClaims)
	require.NoError(t, err)

	tests := []struct {
		name  string
		token string
		at    time.Time
		want  error // nil: any rejection
	}{
		{"expired", good, testNow.Add(time.Hour + time.Second), jwt.ErrTokenExpired},
		{"wrong audience", sign(t, jwt.SigningMethodES256, a.key, withClaims(func(c *jwt.RegisteredClaims) { c.Audience = jwt.ClaimStrings{"other"} })), testNow, jwt.ErrTokenInvalidAudience},
		{"no audience", sign(t, jwt.SigningMethodES256, a.key, withClaims(func(c *jwt.RegisteredClaims) { c.Audience = nil })), testNow, nil},
		{"wrong issuer", sign(t, jwt.SigningMethodES256, a.key, withClaims(func(c *jwt.RegisteredClaims) { c.Issuer = "mallory" })), testNow, jwt.ErrTokenInvalidIssuer},
		{"no expiry", sign(t, jwt.SigningMethodES256, a.key, withClaims(func(c *jwt.RegisteredClaims) { c.ExpiresAt = nil })), testNow, jwt.ErrTokenRequiredClaimMissing},
		{"empty subject", sign(t, jwt.SigningMethodES256, a.key, withClaims(func(c *jwt.RegisteredClaims) { c.Subject = "" })), testNow, nil},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, validClaims()), testNow, nil},
		{"HS256 with a random key", sign(t, jwt.SigningMethodHS256, hmacKey, validClaims()), testNow, nil},
		{"HS256 keyed with our public key", sign(t, jwt.SigningMethodHS256, publicKeyPEM(t, a), validClaims()), testNow, nil},
		{"ES384", sign(t, jwt.SigningMethodES384, p384, validClaims()), testNow, nil},
		{"signed by another authority", sign(t, jwt.SigningMethodES256, other.key, validClaims()), testNow, jwt.ErrTokenSignatureInvalid},
		{"subject swapped after signing", parts[0] + "." + base64.RawURLEncoding.EncodeToString(swapped) + "." + parts[2], testNow, jwt.ErrTokenSignatureInvalid},
		{"signature dropped", parts[0] + "." + parts[1] + ".", testNow, nil},
		{"garbage", "not-a-token-at-all-but-long-enough-to-spot", testNow, jwt.ErrTokenMalformed},
		{"huge", strings.Repeat("A", maxTokenLen+1), testNow, nil},
		{"no role (minted before roles)", roleless(t, a, "demo"), testNow, nil},
		{"unknown role", sign(t, jwt.SigningMethodES256, a.key, withRole("admin")), testNow, nil},
		{"audit is no token role", sign(t, jwt.SigningMethodES256, a.key, withRole(roleAudit)), testNow, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := a.Verify(tt.token, tt.at)
			require.Error(t, err)
			require.Zero(t, id)
			t.Logf("rejected: %v", err)
			if tt.want != nil {
				require.ErrorIs(t, err, tt.want)
			}
			require.NotContains(t, err.Error(), tt.token, "errors never quote the token")
			for _, part := range strings.Split(tt.token, ".") {
				if len(part) > 8 {
					require.NotContains(t, err.Error(), part, "errors never quote any part of the token")
				}
			}
		})
	}
}
