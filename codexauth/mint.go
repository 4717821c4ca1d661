package codexauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	// PlaceholderRefreshPrefix starts every placeholder refresh token, so a
	// person reading an agent's auth.json sees at once that it is not real.
	// (The egress answers every refresh on that route; it reads no body.)
	PlaceholderRefreshPrefix = "egressgate-placeholder-refresh-"

	// issuer and keyID mark the placeholders for whoever decodes one. The
	// kid also keeps the header's bytes from lining up with the header of
	// an unkeyed HS256/ES256 token (see the tests' substring check).
	issuer = "egressgate-placeholder"
	keyID  = "egressgate-placeholder"
	// audience is what OpenAI's access tokens carry; Codex does not check
	// it, but a token that looks like the real thing confuses no tool.
	audience = "https://api.openai.com/v1"
	// subject and email name no person: the agent's identity is the
	// host's, and it is not the placeholder's to repeat.
	subject = "egressgate-placeholder"
	email   = "agent@bottle.invalid"

	refreshRandomBytes = 24

	// PlaceholderLifetime is how long a placeholder login lasts, from the
	// moment it is minted. It does not follow the host token's expiry:
	// the egress injects whatever the host holds when a request passes,
	// so the placeholder's exp decides nothing upstream. What it decides
	// is when Codex refreshes, and Codex refreshes a token with less than
	// a few minutes left before every request: a placeholder copying a
	// host token near expiry made Codex refresh hundreds of times a
	// minute. Eight hours is a working day of requests per refresh and
	// still brings a changed account or plan to the agent the same day.
	PlaceholderLifetime = 8 * time.Hour
)

// Minter signs placeholder tokens with a key of its own. The key is
// generated in NewMinter, held in memory only and never written: nothing
// ever needs to verify a placeholder, so a lost key costs nothing.
type Minter struct {
	key *ecdsa.PrivateKey
}

// NewMinter generates a throwaway ECDSA P-256 key.
func NewMinter() (*Minter, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("codexauth: generate placeholder key: %w", err)
	}
	return &Minter{key: key}, nil
}

// authClaim is the placeholder's "https://api.openai.com/auth" claim.
type authClaim struct {
	AccountID string `json:"chatgpt_account_id"`
	PlanType  string `json:"chatgpt_plan_type,omitempty"`
	UserID    string `json:"chatgpt_user_id,omitempty"`
}

// accessClaims is the placeholder access token's payload.
type accessClaims struct {
	jwt.RegisteredClaims
	Auth authClaim `json:"https://api.openai.com/auth"`
	// Placeholder says what this token is to anyone who decodes it, such
	// as a person reading the agent's auth.json.
	Placeholder bool `json:"egressgate_placeholder"`
}

// idClaims is the placeholder id token's payload: Codex reads the plan and
// account from the id token, and shows the email.
type idClaims struct {
	accessClaims
	Email string `json:"email"`
}

// Tokens mints a placeholder login for the account c describes, issued at
// now and lasting PlaceholderLifetime. It refuses claims a placeholder
// cannot honestly stand for: no account, or a host token already expired.
func (m *Minter) Tokens(c Claims, now time.Time) (Tokens, error) {
	if err := c.check(now); err != nil {
		return Tokens{}, err
	}
	access := m.accessClaims(c, now)
	at, err := m.sign(access)
	if err != nil {
		return Tokens{}, err
	}
	it, err := m.sign(idClaims{accessClaims: access, Email: email})
	if err != nil {
		return Tokens{}, err
	}
	rt, err := refreshToken()
	if err != nil {
		return Tokens{}, err
	}
	return Tokens{IDToken: it, AccessToken: at, RefreshToken: rt}, nil
}

func (c Claims) check(now time.Time) error {
	switch {
	case c.AccountID == "":
		return errors.New("codexauth: claims name no ChatGPT account")
	case c.Expiry.IsZero():
		return errors.New("codexauth: claims have no expiry")
	case !now.Before(c.Expiry):
		return fmt.Errorf("codexauth: host access token expired at %s", c.Expiry.UTC().Format(time.RFC3339))
	}
	return nil
}

func (m *Minter) accessClaims(c Claims, now time.Time) accessClaims {
	return accessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   subject,
			Audience:  jwt.ClaimStrings{audience},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(PlaceholderLifetime)),
		},
		Auth:        authClaim{AccountID: c.AccountID, PlanType: c.PlanType, UserID: c.UserID},
		Placeholder: true,
	}
}

func (m *Minter) sign(claims jwt.Claims) (string, error) {
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	tok.Header["kid"] = keyID
	s, err := tok.SignedString(m.key)
	if err != nil {
		return "", fmt.Errorf("codexauth: sign placeholder: %w", err)
	}
	return s, nil
}

// refreshToken is random so that two placeholders are never equal; it is
// not a JWT because Codex treats refresh tokens as opaque.
func refreshToken() (string, error) {
	b := make([]byte, refreshRandomBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("codexauth: placeholder refresh token: %w", err)
	}
	return PlaceholderRefreshPrefix + hex.EncodeToString(b), nil
}
