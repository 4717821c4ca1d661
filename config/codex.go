package config

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// codexFix is the one remedy for every auth.json problem: a fresh ChatGPT
// login on the host. Device auth works on headless hosts too.
const codexFix = "run 'codex login --device-auth' on the host"

// chatgptAuthClaim is the access token claim naming the ChatGPT account;
// chatgpt.com refuses a token without one.
const chatgptAuthClaim = "https://api.openai.com/auth"

// codexAuthJSON is the part of Codex's auth.json egressgate reads. It
// declares no refresh_token or id_token on purpose: encoding/json skips
// undeclared keys, so those tokens are never copied out of the file's
// bytes into anything that outlives the read.
type codexAuthJSON struct {
	AuthMode *string `json:"auth_mode"`
	APIKey   *string `json:"OPENAI_API_KEY"`
	Tokens   *struct {
		AccessToken string `json:"access_token"`
	} `json:"tokens"`
}

// readCodexAuth reads the ChatGPT access token held in the Codex auth.json
// at path, and its expiry.
func (l *loader) readCodexAuth(path string) hostLogin {
	c := hostLogin{path: path, fix: codexFix}
	fail := c.failed
	data, failed := l.readLoginFile(c)
	if failed != nil {
		return *failed
	}
	var f codexAuthJSON
	if err := json.Unmarshal(data, &f); err != nil {
		// The decoder's message may quote the bytes it choked on.
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			return fail("is not valid JSON")
		}
		return fail("is not a Codex auth.json")
	}
	access, problem := chatgptAccessToken(f)
	if problem != "" {
		return fail(problem)
	}
	exp, problem := checkAccessToken(access)
	if problem != "" {
		return fail(problem)
	}
	c.value, c.expiry = NewSecret(access), exp
	return c
}

// chatgptAccessToken picks the access token out of a ChatGPT login, or
// says why the file is not one.
func chatgptAccessToken(f codexAuthJSON) (string, string) {
	mode := ""
	if f.AuthMode != nil {
		mode = *f.AuthMode
	}
	hasKey := f.APIKey != nil && *f.APIKey != ""
	switch {
	case mode == "apikey" || (mode == "" && hasKey):
		return "", "holds an API key login; egressgate forwards only ChatGPT logins"
	case mode != "" && mode != "chatgpt":
		return "", "auth_mode is not chatgpt; egressgate forwards only ChatGPT logins"
	case f.Tokens == nil:
		return "", "holds no ChatGPT tokens"
	case f.Tokens.AccessToken == "":
		return "", "holds no tokens.access_token"
	}
	return f.Tokens.AccessToken, ""
}

// checkAccessToken reads the access token's claims without verifying its
// signature (OpenAI signs it, not us; chatgpt.com verifies it), to refuse a
// token that has no expiry or names no ChatGPT account before an agent
// tries it. It returns the expiry.
func checkAccessToken(token string) (time.Time, string) {
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
		return time.Time{}, "tokens.access_token is not a JWT"
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return time.Time{}, "access token has no expiry (exp)"
	}
	if !hasChatGPTAccount(claims) {
		return time.Time{}, "access token names no ChatGPT account (" + chatgptAuthClaim + " chatgpt_account_id)"
	}
	// UTC, so status output and goldens do not depend on the host zone.
	return exp.UTC(), ""
}

func hasChatGPTAccount(claims jwt.MapClaims) bool {
	auth, ok := claims[chatgptAuthClaim].(map[string]any)
	if !ok {
		return false
	}
	id, ok := auth["chatgpt_account_id"].(string)
	return ok && id != ""
}
