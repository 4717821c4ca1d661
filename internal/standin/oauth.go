// Package standin holds loopback stand-ins for the services egressgate and
// its agents talk to, for tests: they behave like the real ones in the
// ways that matter to egressgate, and never need the internet.
package standin

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// CodexClientID is the client id the Codex CLI (and egressgate's host
// login refresher) present to auth.openai.com.
const CodexClientID = "app_EMoamEEZ73f0CkXaXp7hrann"

// OAuth stands in for auth.openai.com's token endpoint (POST /oauth/token)
// the way Codex uses it: refresh tokens rotate on every use, and a
// refresh token used a second time is refused as refresh_token_reused,
// like OpenAI's. Tokens are ChatGPT-shaped JWTs signed with a throwaway
// key.
type OAuth struct {
	// Account is the chatgpt_account_id every token names.
	Account string
	// Life is how long each access token lives.
	Life time.Duration
	// Now is the clock tokens are dated by; nil is time.Now.
	Now func() time.Time

	mu sync.Mutex
	// valid refresh tokens, and the ones already used.
	valid, used map[string]bool
	// refreshes counts refresh requests, granted or not.
	refreshes int
	// failStatus, when set, answers every refresh with that status.
	failStatus int
	// before, when set, runs (unlocked) before a refresh is decided.
	before func(refreshToken string)
}

// NewOAuth returns a token endpoint issuing tokens for account that live
// for life.
func NewOAuth(account string, life time.Duration) *OAuth {
	return &OAuth{Account: account, Life: life, valid: map[string]bool{}, used: map[string]bool{}}
}

// Tokens is one login as the endpoint issues it.
type Tokens struct {
	IDToken      string `json:"id_token"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// Login issues a fresh login, as a device-code login on the host would.
func (o *OAuth) Login() Tokens {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.issue()
}

// Refreshes is how many refresh requests the endpoint has received.
func (o *OAuth) Refreshes() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.refreshes
}

// FailWith makes every refresh answer status (0 restores normal answers).
func (o *OAuth) FailWith(status int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.failStatus = status
}

// Before runs f before each refresh is decided, for tests that race a
// second client against the one being answered.
func (o *OAuth) Before(f func(refreshToken string)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.before = f
}

// Revoke refuses every refresh token issued so far (a logout elsewhere).
func (o *OAuth) Revoke() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for rt := range o.valid {
		delete(o.valid, rt)
		o.used[rt] = true
	}
}

// Refresh is a refresh by another client (the host's Codex), outside HTTP.
func (o *OAuth) Refresh(refreshToken string) (Tokens, int, string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.refresh(refreshToken)
}

func (o *OAuth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ClientID     string `json:"client_id"`
		GrantType    string `json:"grant_type"`
		RefreshToken string `json:"refresh_token"`
	}
	if r.Method != http.MethodPost || r.URL.Path != "/oauth/token" {
		http.NotFound(w, r)
		return
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.GrantType != "refresh_token" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request"})
		return
	}
	if req.ClientID != CodexClientID {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client"})
		return
	}
	o.mu.Lock()
	before := o.before
	o.mu.Unlock()
	if before != nil {
		before(req.RefreshToken)
	}
	o.mu.Lock()
	o.refreshes++
	fail := o.failStatus
	var (
		t      Tokens
		status int
		code   string
	)
	if fail == 0 {
		t, status, code = o.refresh(req.RefreshToken)
	}
	o.mu.Unlock()
	switch {
	case fail != 0:
		writeJSON(w, fail, map[string]any{"error": map[string]any{"message": "stand-in failure", "code": "server_error"}})
	case status != http.StatusOK:
		writeJSON(w, status, map[string]any{"error": map[string]any{"message": "refresh refused", "type": "invalid_request_error", "code": code}})
	default:
		writeJSON(w, http.StatusOK, t)
	}
}

// refresh rotates refreshToken. Callers hold o.mu.
func (o *OAuth) refresh(refreshToken string) (Tokens, int, string) {
	switch {
	case o.valid[refreshToken]:
		delete(o.valid, refreshToken)
		o.used[refreshToken] = true
		return o.issue(), http.StatusOK, ""
	case o.used[refreshToken]:
		return Tokens{}, http.StatusUnauthorized, "refresh_token_reused"
	default:
		return Tokens{}, http.StatusUnauthorized, "refresh_token_invalidated"
	}
}

// issue mints a login. Callers hold o.mu.
func (o *OAuth) issue() Tokens {
	now := time.Now()
	if o.Now != nil {
		now = o.Now()
	}
	rt := "rt-standin-" + rand.Text()
	o.valid[rt] = true
	return Tokens{
		IDToken:      o.AccessToken(now, now.Add(o.Life)),
		AccessToken:  o.AccessToken(now, now.Add(o.Life)),
		RefreshToken: rt,
	}
}

// standinKey signs the stand-in's tokens; nothing verifies them.
var standinKey = []byte("standin-oauth-signing-key")

// AccessToken is a ChatGPT-shaped access token for the endpoint's account,
// issued at iat and expiring at exp, unique per call.
func (o *OAuth) AccessToken(iat, exp time.Time) string {
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": "https://auth.openai.com", "aud": []string{"https://api.openai.com/v1"},
		"iat": iat.Unix(), "exp": exp.Unix(), "jti": rand.Text(),
		"https://api.openai.com/auth":    map[string]any{"chatgpt_account_id": o.Account, "chatgpt_plan_type": "pro", "chatgpt_user_id": "user-standin"},
		"https://api.openai.com/profile": map[string]any{"email": "host@example.test"},
	}).SignedString(standinKey)
	if err != nil {
		panic(err) // HS256 over a fixed key cannot fail
	}
	return s
}

// AuthJSON is a host auth.json holding t, as Codex writes it, plus a
// field of Codex's that egressgate does not know, which must survive.
func (o *OAuth) AuthJSON(t Tokens, lastRefresh time.Time) []byte {
	b, err := json.MarshalIndent(map[string]any{
		"auth_mode":      "chatgpt",
		"OPENAI_API_KEY": nil,
		"tokens": map[string]any{
			"id_token": t.IDToken, "access_token": t.AccessToken, "refresh_token": t.RefreshToken, "account_id": o.Account,
		},
		"last_refresh":        lastRefresh.UTC().Format(time.RFC3339Nano),
		"agent_identity_hint": map[string]any{"kept": true},
	}, "", "  ")
	if err != nil {
		panic(err)
	}
	return b
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
