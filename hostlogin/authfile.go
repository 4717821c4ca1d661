package hostlogin

import (
	"github.com/egressgate/egressgate/config"

	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/egressgate/egressgate/internal/securefile"
)

// authFile is the host's Codex auth.json as the refresher reads and
// rewrites it. Every field is kept as the raw JSON it was read as, so a
// field egressgate does not know (Codex adds some from time to time)
// survives a refresh unchanged and the host's Codex keeps working.
type authFile struct {
	fields map[string]json.RawMessage
	tokens map[string]json.RawMessage
	// The parts the refresher acts on.
	refresh   string
	access    accessFacts
	refreshed time.Time // last_refresh; zero when absent
}

// accessFacts are the claims of an access token that schedule a refresh.
type accessFacts struct {
	issued, expires time.Time
}

// chatgptAuthClaim names the ChatGPT account in OpenAI's access tokens.
const chatgptAuthClaim = "https://api.openai.com/auth"

// errNoLogin is a file that holds no ChatGPT login to refresh (logged
// out, an API key): nothing to do until a person logs in again.
var errNoLogin = errors.New("holds no ChatGPT login to refresh")

// readAuthFile reads the login at path. Its errors name the problem and
// never quote the file.
func readAuthFile(path string) (*authFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: not found: %w", path, errNoLogin)
		}
		return nil, fmt.Errorf("%s: cannot read it", path)
	}
	return parseAuthFile(path, data)
}

func parseAuthFile(path string, data []byte) (*authFile, error) {
	f := &authFile{}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%s: is empty: %w", path, errNoLogin)
	}
	if err := json.Unmarshal(data, &f.fields); err != nil || f.fields == nil {
		return nil, fmt.Errorf("%s: is not a Codex auth.json", path)
	}
	if key := f.fields["OPENAI_API_KEY"]; len(key) > 0 && string(key) != "null" && string(key) != `""` {
		return nil, fmt.Errorf("%s: holds an API key login: %w", path, errNoLogin)
	}
	if raw, ok := f.fields["tokens"]; !ok || json.Unmarshal(raw, &f.tokens) != nil || f.tokens == nil {
		return nil, fmt.Errorf("%s: holds no ChatGPT tokens: %w", path, errNoLogin)
	}
	var access string
	if json.Unmarshal(f.tokens["access_token"], &access) != nil || json.Unmarshal(f.tokens["refresh_token"], &f.refresh) != nil ||
		access == "" || f.refresh == "" {
		return nil, fmt.Errorf("%s: holds no access and refresh token: %w", path, errNoLogin)
	}
	facts, problem := readAccessToken(access)
	if problem != "" {
		return nil, fmt.Errorf("%s: %s", path, problem)
	}
	f.access = facts
	var last string
	if json.Unmarshal(f.fields["last_refresh"], &last) == nil {
		f.refreshed, _ = time.Parse(time.RFC3339Nano, last)
	}
	return f, nil
}

// readAccessToken reads the claims that matter without verifying the
// signature: OpenAI signs the token and chatgpt.com checks it. A token
// with no expiry or no ChatGPT account cannot be scheduled or used.
func readAccessToken(token string) (accessFacts, string) {
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
		return accessFacts{}, "access token is not a JWT"
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return accessFacts{}, "access token has no expiry (exp)"
	}
	auth, _ := claims[chatgptAuthClaim].(map[string]any)
	if id, _ := auth["chatgpt_account_id"].(string); id == "" {
		return accessFacts{}, "access token names no ChatGPT account"
	}
	facts := accessFacts{expires: exp.UTC()}
	if iat, err := claims.GetIssuedAt(); err == nil && iat != nil {
		facts.issued = iat.UTC()
	}
	return facts, ""
}

// withTokens is the file with the token endpoint's answer in it: the new
// access token, and the id and refresh tokens when the answer carries
// them (a refresh token is kept when the endpoint does not rotate it),
// stamped refreshed at now. Everything else is kept as it was.
func (f *authFile) withTokens(t tokenAnswer, now time.Time) ([]byte, error) {
	tokens := make(map[string]json.RawMessage, len(f.tokens))
	for k, v := range f.tokens {
		tokens[k] = v
	}
	set := func(m map[string]json.RawMessage, key string, v any) error {
		raw, err := json.Marshal(v)
		m[key] = raw
		return err
	}
	fields := make(map[string]json.RawMessage, len(f.fields)+1)
	for k, v := range f.fields {
		fields[k] = v
	}
	errs := []error{set(tokens, "access_token", t.AccessToken)}
	if t.IDToken != "" {
		errs = append(errs, set(tokens, "id_token", t.IDToken))
	}
	if t.RefreshToken != "" {
		errs = append(errs, set(tokens, "refresh_token", t.RefreshToken))
	}
	errs = append(errs, set(fields, "tokens", tokens), set(fields, "last_refresh", now.UTC().Format(time.RFC3339Nano)))
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// Indented like Codex writes it, so a person comparing the file
	// before and after sees only what changed.
	return json.MarshalIndent(fields, "", "  ")
}

// writeLogin replaces the login file with data: atomically, mode 0600 as
// Codex writes it, keeping the file's owner and following a symbolic link
// to the file it names.
func writeLogin(path string, data []byte) error {
	return securefile.ReplaceKeepingOwner(path, data, 0o600)
}

// RefreshToken reads the refresh token of the Codex login at path, for the
// egress to recognise it should an agent ever send it out (package dlp): a
// value egressgate holds must never leave. The error names the file, never
// a value.
func RefreshToken(path string) (config.Secret, error) {
	f, err := readAuthFile(path)
	if err != nil {
		return config.Secret{}, err
	}
	return config.NewSecret(f.refresh), nil
}
