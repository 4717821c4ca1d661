package config

import (
	"fmt"
	"io/fs"
	"os"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// codexManifest has forward_host_credentials on line 4.
func codexManifest(forward string) string {
	return "name: demo\nagent_provider:\n  template: codex\n  forward_host_credentials: " + forward + "\n"
}

// TestCodexNotForwardedNeverOpensAuthJSON is invariant 5: while
// forward_host_credentials is not true, egressgate never opens auth.json,
// even when it exists, and chatgpt.com carries no credential.
func TestCodexNotForwardedNeverOpensAuthJSON(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		wantErr bool
	}{
		{"false", codexManifest("false"), false},
		{"left out", "name: demo\nagent_provider:\n  template: codex\n", false},
		{"not a boolean", codexManifest(`"true"`), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHost(tt.text)
			h.files[testAuthJSON] = authJSON(t, accessToken(t, testNow.Add(time.Hour), nil))
			h.onRead = func(path string) {
				if path != testManifest {
					t.Errorf("Load opened %s; only the manifest may be read", path)
				}
			}
			opts := h.options()
			opts.CodexHome = "" // so only LookupEnv could locate it
			lookup := opts.LookupEnv
			opts.LookupEnv = func(key string) (string, bool) {
				if key == "CODEX_HOME" || key == "HOME" {
					t.Errorf("Load looked up $%s without forward_host_credentials", key)
				}
				return lookup(key)
			}
			p, err := Load(testManifest, opts)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Empty(t, p.Slots)
			for _, r := range p.Routes {
				require.Nil(t, r.Auth, "route %s", r.Host)
			}
		})
	}
}

func TestCodexForwarded(t *testing.T) {
	valid := accessToken(t, testNow.Add(time.Hour), nil)
	h := newHost(codexManifest("true"))
	h.files[testAuthJSON] = authJSON(t, valid)
	p := h.mustLoad(t)

	require.Equal(t, []Slot{{
		Name:   "EGRESS_TOKEN_0",
		Source: Source{Kind: SourceCodex, Ref: testAuthJSON},
		Value:  NewSecret(valid),
		Expiry: testNow.Add(time.Hour),
	}}, p.Slots)
	chat, ok := p.Route("chatgpt.com")
	require.True(t, ok)
	require.Equal(t, Route{
		Host:    "chatgpt.com",
		TLS:     Intercept,
		Auth:    &Auth{Scheme: "Bearer", Slot: "EGRESS_TOKEN_0"},
		Matches: backendAPI,
		DLP:     blockDLP,
	}, chat)
	login, ok := p.Route("auth.openai.com")
	require.True(t, ok)
	require.Nil(t, login.Auth, "the login host never gets the token")
}

// TestCodexAuthJSONRejected covers every way auth.json can be unusable:
// each is one line at forward_host_credentials naming the file, the
// problem and the fix, and quoting no token.
func TestCodexAuthJSONRejected(t *testing.T) {
	expired := accessToken(t, testNow.Add(-time.Hour), nil)
	tests := []struct {
		name    string
		content string // "" means the file does not exist
		problem string
	}{
		{"missing", "", "not found"},
		{"emptied", " \n", "is empty"},
		{"not JSON", `{"tokens": {"refresh_token": "` + testRefresh + `", x}`, "is not valid JSON"},
		{"not an object", `["` + testRefresh + `"]`, "is not a Codex auth.json"},
		{
			"expired",
			authJSON(t, expired),
			"access token expired at 2026-11-28T08:00:00Z",
		},
		{
			"api key mode",
			marshal(t, map[string]any{"auth_mode": "apikey", "OPENAI_API_KEY": "sk-proj-SECRET", "tokens": nil}),
			"holds an API key login; egressgate forwards only ChatGPT logins",
		},
		{
			"api key without auth_mode",
			marshal(t, map[string]any{"OPENAI_API_KEY": "sk-proj-SECRET", "tokens": map[string]any{"access_token": expired, "refresh_token": testRefresh}}),
			"holds an API key login; egressgate forwards only ChatGPT logins",
		},
		{
			"unknown auth_mode",
			marshal(t, map[string]any{"auth_mode": "sk-proj-SECRET", "tokens": map[string]any{"access_token": expired}}),
			"auth_mode is not chatgpt; egressgate forwards only ChatGPT logins",
		},
		{"no tokens", `{"auth_mode": "chatgpt", "OPENAI_API_KEY": null}`, "holds no ChatGPT tokens"},
		{"no access token", `{"auth_mode": "chatgpt", "tokens": {"refresh_token": "` + testRefresh + `"}}`, "holds no tokens.access_token"},
		{"access token not a JWT", authJSON(t, "opaque-SECRET-token"), "tokens.access_token is not a JWT"},
		{"access token with a bad payload", authJSON(t, "eyJhbGciOiJIUzI1NiJ9.U0VDUkVU.c2ln"), "tokens.access_token is not a JWT"},
		{
			"no exp",
			authJSON(t, accessToken(t, testNow, jwt.MapClaims{"exp": nil})),
			"access token has no expiry (exp)",
		},
		{
			"exp not a number",
			authJSON(t, accessToken(t, testNow, jwt.MapClaims{"exp": "tomorrow"})),
			"access token has no expiry (exp)",
		},
		{
			"no account claim",
			authJSON(t, accessToken(t, testNow.Add(time.Hour), jwt.MapClaims{chatgptAuthClaim: nil})),
			"access token names no ChatGPT account (https://api.openai.com/auth chatgpt_account_id)",
		},
		{
			"empty account id",
			authJSON(t, accessToken(t, testNow.Add(time.Hour), jwt.MapClaims{chatgptAuthClaim: map[string]any{"chatgpt_account_id": ""}})),
			"access token names no ChatGPT account (https://api.openai.com/auth chatgpt_account_id)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHost(codexManifest("true"))
			if tt.content != "" {
				h.files[testAuthJSON] = tt.content
			}
			got := h.loadErrors(t)
			want := testManifest + ":4: " + testAuthJSON + ": " + tt.problem + "; run 'codex login --device-auth' on the host"
			require.Equal(t, []string{want}, got)

			// Running, the same file revokes the login rather than failing
			// the reload: the slot is empty and says why.
			p := h.mustLoad(t)
			slot := p.Slots[0]
			if tt.name == "expired" {
				assert.True(t, slot.Present() && slot.Expired(testNow), "an expired login is kept and refused by its expiry")
			} else {
				assert.False(t, slot.Present())
				assert.True(t, slot.LoggedOut())
				assert.Equal(t, testAuthJSON+": "+tt.problem+"; run 'codex login --device-auth' on the host", slot.Problem)
			}
			for _, secret := range []string{testRefresh, expired, "SECRET"} {
				require.NotContains(t, got[0], secret)
			}
		})
	}
}

func TestCodexAuthJSONUnreadable(t *testing.T) {
	h := newHost(codexManifest("true"))
	h.fail = map[string]error{testAuthJSON: &fs.PathError{Op: "open", Path: testAuthJSON, Err: fs.ErrPermission}}
	require.Equal(t, []string{
		fmt.Sprintf("%s:4: %s: cannot read: permission denied; make it readable by the user egressgate runs as (uid %d), or run egressgate as the user who logged in", testManifest, testAuthJSON, os.Getuid()),
	}, h.loadErrors(t), "a permission problem, not a login to redo")
}

func TestCodexAuthJSONWithoutAuthMode(t *testing.T) {
	valid := accessToken(t, testNow.Add(time.Hour), nil)
	h := newHost(codexManifest("true"))
	h.files[testAuthJSON] = marshal(t, map[string]any{
		"OPENAI_API_KEY": nil,
		"tokens":         map[string]any{"access_token": valid, "refresh_token": testRefresh},
	})
	p := h.mustLoad(t)
	require.Equal(t, valid, p.Slots[0].Value.Reveal())
}

// TestCodexHome checks where auth.json is looked for: --codex-home, then
// $CODEX_HOME, then $HOME/.codex.
func TestCodexHome(t *testing.T) {
	tests := []struct {
		name string
		flag string
		env  map[string]string
		want string // auth.json path, or "" when it cannot be found
	}{
		{"flag wins", "/flag", map[string]string{"CODEX_HOME": "/env", "HOME": "/home/u"}, "/flag/auth.json"},
		{"CODEX_HOME", "", map[string]string{"CODEX_HOME": "/env", "HOME": "/home/u"}, "/env/auth.json"},
		{"empty CODEX_HOME falls back to HOME", "", map[string]string{"CODEX_HOME": "", "HOME": "/home/u"}, "/home/u/.codex/auth.json"},
		{"HOME", "", map[string]string{"HOME": "/home/u"}, "/home/u/.codex/auth.json"},
		{"nowhere", "", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHost(codexManifest("true"))
			h.env = tt.env
			if tt.want != "" {
				h.files[tt.want] = authJSON(t, accessToken(t, testNow.Add(time.Hour), nil))
			}
			opts := h.options()
			opts.CodexHome = tt.flag
			p, err := Load(testManifest, opts)
			if tt.want == "" {
				require.EqualError(t, err, testManifest+":4: agent_provider.forward_host_credentials: cannot find the Codex home: pass --codex-home, or set CODEX_HOME or HOME")
				return
			}
			require.NoError(t, err)
			require.Equal(t, Source{Kind: SourceCodex, Ref: tt.want}, p.Slots[0].Source)
		})
	}
}

// TestCodexExampleError is the error a person sees for the repository's
// example when the host login has expired.
func TestCodexExampleError(t *testing.T) {
	h := newHost("")
	h.files = map[string]string{
		"examples/codex.md": "---\nname: codex\nagent_provider:\n  template: codex\n  forward_host_credentials: true\n---\n",
		testAuthJSON:        authJSON(t, accessToken(t, time.Date(2026, 11, 28, 8, 30, 0, 0, time.UTC), nil)),
	}
	p, err := Load("examples/codex.md", h.options())
	require.NoError(t, err, "a login problem is not a manifest problem")
	assert.Equal(t, Slot{Name: "EGRESS_TOKEN_0", Source: Source{Kind: SourceCodex, Ref: testAuthJSON},
		Value: p.Slots[0].Value, Expiry: time.Date(2026, 11, 28, 8, 30, 0, 0, time.UTC)}, p.Slots[0],
		"an expired login keeps its value: ext_proc refuses it by its expiry")
	err = p.HostLoginError()
	require.EqualError(t, err, "examples/codex.md:5: /home/u/.codex/auth.json: access token expired at 2026-11-28T08:30:00Z; run 'codex login --device-auth' on the host")
}
