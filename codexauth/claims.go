// Package codexauth makes the placeholder ChatGPT login a bottle's Codex
// holds. Codex stays in ChatGPT mode only while its auth.json holds tokens
// that parse as JWTs naming a ChatGPT account and plan; the egress replaces
// whatever the agent sends with the host's real token, so the placeholders
// need to look right to Codex and nothing more. They are signed with a
// throwaway key and built from a handful of non-secret facts (expiry,
// account id, plan), never from the host token's bytes.
package codexauth

import (
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// authClaimName is the claim in which OpenAI's tokens name the ChatGPT
// account and plan. Codex reads it from the id token; chatgpt.com from the
// access token.
const authClaimName = "https://api.openai.com/auth"

// Claims are the non-secret facts of the host's access token that the
// placeholders copy.
type Claims struct {
	// Expiry is the host token's exp. Placeholders are refused for an
	// expired host login, but do not copy it (see PlaceholderLifetime).
	Expiry time.Time
	// AccountID is chatgpt_account_id; chatgpt.com wants it in the
	// chatgpt-account-id header, which Codex fills from auth.json.
	AccountID string
	// PlanType is chatgpt_plan_type ("plus", "pro", …); Codex shows it and
	// picks defaults by it. Optional.
	PlanType string
	// UserID is chatgpt_user_id (or user_id). Optional.
	UserID string
}

// ClaimsFromAccessToken reads the claims of a ChatGPT access token without
// verifying its signature: OpenAI signs it and chatgpt.com checks it, and
// here only its facts are wanted. Errors never quote the token, nor the
// parser's message, which can quote the bytes it choked on.
func ClaimsFromAccessToken(token string) (Claims, error) {
	mc := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, mc); err != nil {
		return Claims{}, errors.New("codexauth: access token is not a JWT")
	}
	exp, err := mc.GetExpirationTime()
	if err != nil || exp == nil {
		return Claims{}, errors.New("codexauth: access token has no expiry (exp)")
	}
	auth, _ := mc[authClaimName].(map[string]any)
	c := Claims{
		Expiry:    exp.UTC(),
		AccountID: stringClaim(auth, "chatgpt_account_id"),
		PlanType:  stringClaim(auth, "chatgpt_plan_type"),
		UserID:    stringClaim(auth, "chatgpt_user_id"),
	}
	if c.UserID == "" {
		c.UserID = stringClaim(auth, "user_id")
	}
	if c.AccountID == "" {
		return Claims{}, errors.New("codexauth: access token names no ChatGPT account (" + authClaimName + " chatgpt_account_id)")
	}
	return c, nil
}

func stringClaim(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}
