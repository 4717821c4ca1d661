package agentenv

import (
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/agentenv/leakcheck"
	"github.com/egressgate/egressgate/codexauth"
	"github.com/egressgate/egressgate/config"
)

// forbiddenEnv are the variables through which an agent CLI takes a real
// credential. The agent is given none of them, not even empty.
var forbiddenEnv = []string{"OPENAI_API_KEY", "CODEX_ACCESS_TOKEN", "CODEX_API_KEY", "ANTHROPIC_API_KEY"}

// TestHygiene is issue 4's hygiene test: agent-env runs for a Codex and a
// Claude bottle whose host credentials hold known values, and nothing it
// writes (files, env, the decoded JWTs inside them, its summary) holds any
// piece of the host's access, id or refresh token, API keys or Claude
// token.
func TestHygiene(t *testing.T) {
	setRealEnv(t)
	login := newHostLogin(t)
	for _, tt := range []struct{ name, manifest string }{
		{"codex", codexManifest(true)},
		{"claude", claudeManifest(true)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeHost(t, login)
			o := h.options(t, tt.manifest)
			o.NoCanaries = false
			res, err := Generate(o)
			require.NoError(t, err)

			outputs, err := leakcheck.Texts(o.OutDir)
			require.NoError(t, err)
			outputs["summary"] = fmt.Sprintf("%v %+v", res, *res)
			assertNoHostSecrets(t, outputs, login)

			env := readEnv(t, o.OutDir)
			for _, k := range forbiddenEnv {
				assert.NotContains(t, env, k)
			}
		})
	}
}

// assertNoHostSecrets checks every output against every host credential.
// The placeholders copy the host token's account, user and audience on
// purpose; those values alone are exempt (leakcheck.Pieces explains why
// the check is on signatures and claim values).
func assertNoHostSecrets(t *testing.T, outputs map[string]string, login hostLogin) {
	t.Helper()
	secrets := map[string]string{"access token": login.access, "id token": login.id, "refresh token": login.refresh}
	for k, v := range hostEnv() {
		secrets["$"+k] = v
	}
	copied := []string{hostAccount, hostUser, openaiAud}
	for name, out := range outputs {
		for what, secret := range secrets {
			assert.NotContains(t, out, secret, "%s holds the host's %s", name, what)
			assert.Empty(t, leakcheck.Leak(out, secret, copied...), "%s holds a piece of the host's %s", name, what)
		}
	}
}

func TestCodexForwarded(t *testing.T) {
	login := newHostLogin(t)
	h := newFakeHost(t, login)
	o := h.options(t, codexManifest(true))
	res, err := Generate(o)
	require.NoError(t, err)

	assert.Equal(t, []string{
		filepath.Join(o.OutDir, "ca.pem"),
		filepath.Join(o.OutDir, "ca-bundle.pem"),
		filepath.Join(o.OutDir, "codex", "auth.json"),
		filepath.Join(o.OutDir, "env"),
	}, res.Files)
	want := baseEnvWant(DefaultProxyURL, DefaultCAPath)
	want["CODEX_HOME"] = "/egressgate/codex"
	assert.Equal(t, want, readEnv(t, o.OutDir))
	assertModes(t, o.OutDir, map[string]os.FileMode{"ca.pem": 0o644, "env": 0o644, "codex/auth.json": 0o600})

	auth := readAuthJSON(t, o.OutDir)
	assert.Equal(t, "chatgpt", auth.AuthMode)
	assert.Nil(t, auth.APIKey)
	assert.Equal(t, hostAccount, auth.Tokens.AccountID)
	assert.Equal(t, testNow.Format(time.RFC3339Nano), auth.LastRefresh)
	assert.True(t, strings.HasPrefix(auth.Tokens.RefreshToken, codexauth.PlaceholderRefreshPrefix))
	for name, tok := range map[string]string{"access": auth.Tokens.AccessToken, "id": auth.Tokens.IDToken} {
		c, err := codexauth.ClaimsFromAccessToken(tok)
		require.NoError(t, err, name)
		assert.Equal(t, codexauth.Claims{Expiry: testNow.Add(codexauth.PlaceholderLifetime), AccountID: hostAccount, PlanType: hostPlan, UserID: hostUser}, c, name)
		assert.Contains(t, decodedPayload(t, tok), `"egressgate_placeholder":true`, name)
	}
}

// TestCodexNotForwardedNeverReadsHostLogin is invariant 5 through
// agent-env: only the manifest is opened, and no login is written.
func TestCodexNotForwardedNeverReadsHostLogin(t *testing.T) {
	h := newFakeHost(t, newHostLogin(t))
	o := h.options(t, codexManifest(false))
	res, err := Generate(o)
	require.NoError(t, err)

	assert.Equal(t, []string{o.Manifest}, h.opened)
	assert.NoFileExists(t, filepath.Join(o.OutDir, "codex", "auth.json"))
	assert.NoDirExists(t, filepath.Join(o.OutDir, "codex"))
	assert.Equal(t, baseEnvWant(DefaultProxyURL, DefaultCAPath), readEnv(t, o.OutDir), "no CODEX_HOME without an auth.json in it")
	assert.Contains(t, strings.Join(res.Notes, "\n"), "forward_host_credentials: true", "the note says how to give chatgpt.com a credential")
}

func TestClaude(t *testing.T) {
	tests := []struct {
		name      string
		manifest  string
		unset     bool
		wantToken bool
		wantNote  string
	}{
		{"forwarded", claudeManifest(true), false, true, "mounted at /egressgate"},
		{"host token unset", claudeManifest(true), true, true, "set " + claudeEnvVar},
		{"not forwarded", claudeManifest(false), false, false, "no CLAUDE_CODE_OAUTH_TOKEN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeHost(t, newHostLogin(t))
			if tt.unset {
				delete(h.env, claudeEnvVar)
			}
			o := h.options(t, tt.manifest)
			res, err := Generate(o)
			require.NoError(t, err)

			want := baseEnvWant(DefaultProxyURL, DefaultCAPath)
			if tt.wantToken {
				want["CLAUDE_CODE_OAUTH_TOKEN"] = ClaudePlaceholderToken
				want["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] = "1"
			}
			assert.Equal(t, want, readEnv(t, o.OutDir))
			assert.Contains(t, strings.Join(res.Notes, "\n"), tt.wantNote)
			assert.Equal(t, []string{o.Manifest}, h.opened, "a Claude bottle reads no Codex login")
		})
	}
}

func TestCAAndFlags(t *testing.T) {
	h := newFakeHost(t, newHostLogin(t))
	o := h.options(t, "name: demo\n")
	o.ProxyURL = "http://egress:3128"
	o.CAPath = "/certs/bottle-ca.pem"
	o.SystemRoots = []byte("ROOTS")
	res, err := Generate(o)
	require.NoError(t, err)

	assert.Equal(t, baseEnvWant("http://egress:3128", "/certs/bottle-ca.pem"), readEnv(t, o.OutDir))
	caPEM, err := os.ReadFile(filepath.Join(o.OutDir, "ca.pem"))
	require.NoError(t, err)
	stateCA, err := os.ReadFile(filepath.Join(o.StateDir, "ca.pem"))
	require.NoError(t, err)
	assert.Equal(t, stateCA, caPEM, "the agent trusts the CA serve uses")
	block, rest := pem.Decode(caPEM)
	require.NotNil(t, block)
	assert.Equal(t, "CERTIFICATE", block.Type)
	assert.Empty(t, strings.TrimSpace(string(rest)), "ca.pem holds the certificate only")
	assert.Contains(t, strings.Join(res.Notes, "\n"), "mounted at /certs")
	bundle, err := os.ReadFile(filepath.Join(o.OutDir, "ca-bundle.pem"))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(bundle), "ROOTS\n"), "the bundle starts with the system roots")
	assert.True(t, strings.HasSuffix(string(bundle), string(caPEM)), "and ends with the bottle CA")

	fi, err := os.Stat(o.OutDir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), fi.Mode().Perm())
}

// TestCAPathPlacesEveryPath: --ca-path names ca.pem's path or the mount
// directory, and every path in the env file (the bundle, CODEX_HOME) lies
// under that directory, so the agent is never pointed at a path it was
// not given.
func TestCAPathPlacesEveryPath(t *testing.T) {
	tests := []struct{ caPath, ca, mount string }{
		{"/certs/bottle-ca.pem", "/certs/bottle-ca.pem", "/certs"},
		{"/mnt/egress", "/mnt/egress/ca.pem", "/mnt/egress"},
		{"/mnt/egress/", "/mnt/egress/ca.pem", "/mnt/egress"},
		{"/opt/agent/ca.crt", "/opt/agent/ca.crt", "/opt/agent"},
	}
	for _, tt := range tests {
		t.Run(tt.caPath, func(t *testing.T) {
			h := newFakeHost(t, newHostLogin(t))
			o := h.options(t, codexManifest(true))
			o.CAPath = tt.caPath
			res, err := Generate(o)
			require.NoError(t, err)

			want := baseEnvWant(DefaultProxyURL, tt.ca)
			want["CODEX_HOME"] = tt.mount + "/codex"
			assert.Equal(t, want, readEnv(t, o.OutDir))
			assert.Contains(t, strings.Join(res.Notes, "\n"), "mounted at "+tt.mount)
			// Every file the env file names is in the output, where the
			// mount puts it.
			for _, k := range []string{"CODEX_CA_CERTIFICATE", "SSL_CERT_FILE", "CODEX_HOME"} {
				rel := strings.TrimPrefix(want[k], tt.mount+"/")
				_, err := os.Stat(filepath.Join(o.OutDir, rel))
				assert.NoError(t, err, "%s=%s is not in the output", k, want[k])
			}
		})
	}
}

// TestRerun: a second run replaces the files, and one that no longer
// forwards the login leaves the old placeholder alone but says so.
func TestRerun(t *testing.T) {
	h := newFakeHost(t, newHostLogin(t))
	o := h.options(t, codexManifest(true))
	_, err := Generate(o)
	require.NoError(t, err)
	first := readAuthJSON(t, o.OutDir)
	_, err = Generate(o)
	require.NoError(t, err)
	assert.NotEqual(t, first.Tokens.RefreshToken, readAuthJSON(t, o.OutDir).Tokens.RefreshToken, "auth.json is rewritten")
	assertModes(t, o.OutDir, map[string]os.FileMode{"codex/auth.json": 0o600})

	h.files[o.Manifest] = codexManifest(false)
	res, err := Generate(o)
	require.NoError(t, err)
	assert.FileExists(t, filepath.Join(o.OutDir, "codex", "auth.json"))
	assert.Contains(t, strings.Join(res.Notes, "\n"), "left from an earlier run")
	assert.NotContains(t, readEnv(t, o.OutDir), "CODEX_HOME")
}

func TestRefusals(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"no out", func(o *Options) { o.OutDir = "" }, "--out"},
		{"relative ca path", func(o *Options) { o.CAPath = "ca.pem" }, "--ca-path"},
		{"ca path naming the bundle", func(o *Options) { o.CAPath = "/certs/ca-bundle.pem" }, "another file agent-env writes"},
		{"out inside the state dir", func(o *Options) { o.OutDir = filepath.Join(o.StateDir, "agent") }, "overlaps the state dir"},
		{"state dir inside out", func(o *Options) { o.StateDir = filepath.Join(o.OutDir, "state") }, "overlaps the state dir"},
		{"line break", func(o *Options) { o.ProxyURL = "http://egress:3128\nOPENAI_API_KEY=x" }, "--proxy-url"},
		{"not a proxy URL", func(o *Options) { o.ProxyURL = "egress:3128" }, "--proxy-url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeHost(t, newHostLogin(t))
			o := h.options(t, codexManifest(true))
			tt.edit(&o)
			_, err := Generate(o)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.NoDirExists(t, o.OutDir, "nothing is written")
		})
	}
}

// TestBadManifestIsConfigErrors keeps the CLI's exit code 2 for input
// problems, and writes nothing.
func TestBadManifestIsConfigErrors(t *testing.T) {
	h := newFakeHost(t, newHostLogin(t))
	o := h.options(t, codexManifest(true))
	o.Host.Now = func() time.Time { return hostExp } // the host login has expired
	_, err := Generate(o)
	var errs *config.Errors
	require.True(t, errors.As(err, &errs), "error is %T: %v", err, err)
	assert.Contains(t, err.Error(), "codex login --device-auth")
	assert.NoDirExists(t, o.OutDir)
}

func baseEnvWant(proxy, ca string) map[string]string {
	env := map[string]string{"NO_PROXY": "localhost,127.0.0.1,::1", "no_proxy": "localhost,127.0.0.1,::1"}
	for _, k := range []string{"HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"} {
		env[k] = proxy
	}
	for _, k := range []string{"CODEX_CA_CERTIFICATE", "NODE_EXTRA_CA_CERTS"} {
		env[k] = ca
	}
	// Trust-store replacements get the public roots plus the bottle CA.
	for _, k := range []string{"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO"} {
		env[k] = path.Join(path.Dir(ca), "ca-bundle.pem")
	}
	return env
}

func assertModes(t *testing.T, dir string, want map[string]os.FileMode) {
	t.Helper()
	for name, mode := range want {
		fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(name)))
		require.NoError(t, err)
		assert.Equal(t, mode, fi.Mode().Perm(), name)
	}
}

type authFileWant struct {
	AuthMode string  `json:"auth_mode"`
	APIKey   *string `json:"OPENAI_API_KEY"`
	Tokens   struct {
		IDToken      string `json:"id_token"`
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		AccountID    string `json:"account_id"`
	} `json:"tokens"`
	LastRefresh string `json:"last_refresh"`
}

func readAuthJSON(t *testing.T, dir string) authFileWant {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "codex", "auth.json"))
	require.NoError(t, err)
	var f authFileWant
	require.NoError(t, json.Unmarshal(data, &f))
	return f
}

func decodedPayload(t *testing.T, tok string) string {
	t.Helper()
	parts := leakcheck.Outputs("tok", tok)
	require.Contains(t, parts, "tok jwt[0] payload")
	return parts["tok jwt[0] payload"]
}
