package codexauth

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"time"
)

const redactedTokens = "<redacted:codex placeholder tokens>"

// Tokens is one placeholder login. The values are placeholders, but every
// way Go prints, marshals or logs Tokens yields a redaction all the same:
// logs full of pasteable tokens teach people that pasting tokens is fine,
// and a log line cannot tell a placeholder from the real thing at a
// glance. AuthJSON and RefreshResponse are the only ways out.
type Tokens struct {
	IDToken      string
	AccessToken  string
	RefreshToken string
}

func (Tokens) String() string               { return redactedTokens }
func (Tokens) GoString() string             { return redactedTokens }
func (Tokens) MarshalText() ([]byte, error) { return []byte(redactedTokens), nil }
func (Tokens) MarshalJSON() ([]byte, error) { return json.Marshal(redactedTokens) }
func (Tokens) LogValue() slog.Value         { return slog.StringValue(redactedTokens) }
func (Tokens) Format(f fmt.State, _ rune)   { _, _ = f.Write([]byte(redactedTokens)) }

// authFile is Codex's auth.json in ChatGPT mode. OPENAI_API_KEY is written
// as null because Codex treats a present key as API-key mode.
type authFile struct {
	AuthMode    string     `json:"auth_mode"`
	APIKey      *string    `json:"OPENAI_API_KEY"`
	Tokens      authTokens `json:"tokens"`
	LastRefresh string     `json:"last_refresh"`
}

type authTokens struct {
	IDToken      string `json:"id_token"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	AccountID    string `json:"account_id"`
}

// AuthJSON is the auth.json Codex reads from CODEX_HOME for the tokens t
// minted from c. last_refresh is now: Codex also refreshes a login it
// thinks is old, and this one is new.
func AuthJSON(t Tokens, c Claims, now time.Time) ([]byte, error) {
	f := authFile{
		AuthMode: "chatgpt",
		Tokens: authTokens{
			IDToken:      t.IDToken,
			AccessToken:  t.AccessToken,
			RefreshToken: t.RefreshToken,
			AccountID:    c.AccountID,
		},
		LastRefresh: now.UTC().Format(time.RFC3339Nano),
	}
	return json.MarshalIndent(f, "", "  ")
}

// refreshBody is what https://auth.openai.com/oauth/token answers a
// refresh_token grant with; Codex reads these three fields.
type refreshBody struct {
	IDToken      string `json:"id_token"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// RefreshResponse is the body the egress answers the agent's refresh
// request with.
func RefreshResponse(t Tokens) ([]byte, error) {
	return json.Marshal(refreshBody(t))
}
