package config

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var (
	backendAPI = []Match{{Paths: []PathMatch{{Type: PathPrefix, Value: "/backend-api/"}}}}
	deviceAuth = []Match{{Paths: []PathMatch{{Type: PathPrefix, Value: "/api/accounts/deviceauth/"}, {Type: PathExact, Value: "/oauth/token"}}}}
	// blockDLP is an intercepted route's DLP when the manifest has no dlp.
	blockDLP = DLP{Mode: DLPBlock, LargeBody: LargeBodyBlock, MaxBody: 8 << 20}
)

func TestTemplates(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		env   map[string]string
		want  []Route
		slots []Slot
	}{
		{
			name: "none adds nothing",
			text: "name: demo\n",
		},
		{
			name: "codex without forwarding",
			text: "name: demo\nagent_provider: {template: codex}\n",
			want: []Route{
				{Host: "auth.openai.com", TLS: Intercept, Matches: deviceAuth, DLP: blockDLP},
				{Host: "chatgpt.com", TLS: Intercept, Matches: backendAPI, DLP: blockDLP},
			},
		},
		{
			name: "claude without forwarding",
			text: "name: demo\nagent_provider: {template: claude, auth_token: CLAUDE_TOKEN}\n",
			want: []Route{{Host: "api.anthropic.com", TLS: Intercept, DLP: blockDLP}},
		},
		{
			name: "claude forwarding its token",
			text: "name: demo\nagent_provider: {template: claude, forward_host_credentials: true, auth_token: CLAUDE_TOKEN}\n",
			env:  map[string]string{"CLAUDE_TOKEN": "claude-secret"},
			want: []Route{{Host: "api.anthropic.com", TLS: Intercept, Auth: &Auth{Scheme: "Bearer", Slot: "EGRESS_TOKEN_0"}, DLP: blockDLP}},
			slots: []Slot{{
				Name:   "EGRESS_TOKEN_0",
				Source: Source{Kind: SourceEnv, Ref: "CLAUDE_TOKEN"},
				Value:  NewSecret("claude-secret"),
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHost(tt.text)
			h.env = tt.env
			p := h.mustLoad(t)
			require.Equal(t, tt.want, p.Routes)
			require.Equal(t, tt.slots, p.Slots)
		})
	}
}

func TestTemplateMerge(t *testing.T) {
	const codex = "name: demo\nagent_provider: {template: codex}\negress:\n  routes:\n"
	tests := []struct {
		name    string
		text    string
		want    Route // the merged route, when the manifest is valid
		wantErr []string
	}{
		{
			name: "upstream and narrower matches",
			text: codex + "    - host: chatgpt.com\n      upstream: {address: 127.0.0.1:9443}\n" +
				"      matches:\n        - paths: [{type: prefix, value: /backend-api/codex/}]\n          methods: [POST]\n",
			want: Route{
				Host:     "chatgpt.com",
				TLS:      Intercept,
				Matches:  []Match{{Paths: []PathMatch{{Type: PathPrefix, Value: "/backend-api/codex/"}}, Methods: []string{"POST"}}},
				Upstream: Upstream{Address: "127.0.0.1:9443"},
				DLP:      blockDLP,
			},
		},
		{
			name: "naming the host alone keeps the template route",
			text: codex + "    - host: chatgpt.com\n      tls: intercept\n",
			want: Route{Host: "chatgpt.com", TLS: Intercept, Matches: backendAPI, DLP: blockDLP},
		},
		{
			name: "matches on auth.openai.com add to the template's",
			text: codex + "    - host: auth.openai.com\n      matches:\n        - paths: [{type: prefix, value: /api/accounts/login/}]\n",
			want: Route{Host: "auth.openai.com", TLS: Intercept, Matches: append(slices.Clone(deviceAuth), Match{Paths: []PathMatch{{Type: PathPrefix, Value: "/api/accounts/login/"}}}), DLP: blockDLP},
		},
		{
			name:    "auth on a template host",
			text:    codex + "    - host: chatgpt.com\n      auth: {scheme: Bearer, token_ref: MY_TOKEN}\n",
			wantErr: []string{`:6: egress.routes[0].auth: auth for chatgpt.com comes from the codex template`},
		},
		{
			name:    "passthrough on a template host",
			text:    codex + "    - host: auth.openai.com\n      tls: passthrough\n",
			wantErr: []string{`:6: egress.routes[0].tls: auth.openai.com is intercepted by the codex template; it cannot be passthrough`},
		},
		{
			name: "paths outside the template's",
			text: codex + "    - host: chatgpt.com\n      matches:\n        - paths:\n" +
				"            - {type: prefix, value: /backend-api/ok/}\n            - {type: prefix, value: /backend-api}\n" +
				"            - {type: exact, value: /v1/files}\n",
			wantErr: []string{
				`:9: egress.routes[0].matches[0].paths[1].value: "/backend-api" is not under /backend-api/, which the codex template allows on chatgpt.com`,
				`:10: egress.routes[0].matches[0].paths[2].value: "/v1/files" is not under /backend-api/, which the codex template allows on chatgpt.com`,
			},
		},
		{
			name:    "methods alone would widen the template's paths",
			text:    codex + "    - host: chatgpt.com\n      matches:\n        - methods: [GET]\n",
			wantErr: []string{`:7: egress.routes[0].matches[0]: list paths: the codex template allows only paths under /backend-api/ on chatgpt.com`},
		},
		{
			name:    "a template host twice",
			text:    codex + "    - host: chatgpt.com\n    - host: chatgpt.com\n",
			wantErr: []string{`:6: egress.routes[1].host: chatgpt.com is already routed by egress.routes[0]; list each host once`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHost(tt.text)
			if tt.wantErr != nil {
				require.Equal(t, withFile(tt.wantErr), h.loadErrors(t))
				return
			}
			p := h.mustLoad(t)
			require.Len(t, p.Routes, 2, "merging adds no route")
			got, ok := p.Route(tt.want.Host)
			require.True(t, ok)
			require.Equal(t, tt.want, got)
		})
	}
}

// TestSlots checks slot numbering (template first, then manifest order,
// not host order), sharing, and that an unset variable leaves an empty
// slot rather than failing the load.
func TestSlots(t *testing.T) {
	h := newHost(`name: demo
agent_provider:
  template: claude
  forward_host_credentials: true
  auth_token: CLAUDE_TOKEN
egress:
  routes:
    - host: z.test
      auth: {scheme: token, token_ref: GITHUB_TOKEN}
    - host: b.test
      auth: {scheme: Bearer, token_ref: UNSET_TOKEN}
    - host: a.test
      auth: {scheme: Bearer, token_ref: GITHUB_TOKEN}
    - host: c.test
      auth: {scheme: Bearer, token_ref: CLAUDE_TOKEN}
    - host: d.test
      auth: {scheme: Bearer, token_ref: EMPTY_TOKEN}
    - host: e.test
`)
	h.env = map[string]string{"CLAUDE_TOKEN": "c-secret", "GITHUB_TOKEN": "g-secret", "EMPTY_TOKEN": ""}
	p := h.mustLoad(t)

	require.Equal(t, []Slot{
		{Name: "EGRESS_TOKEN_0", Source: Source{Kind: SourceEnv, Ref: "CLAUDE_TOKEN"}, Value: NewSecret("c-secret")},
		{Name: "EGRESS_TOKEN_1", Source: Source{Kind: SourceEnv, Ref: "GITHUB_TOKEN"}, Value: NewSecret("g-secret")},
		{Name: "EGRESS_TOKEN_2", Source: Source{Kind: SourceEnv, Ref: "UNSET_TOKEN"}},
		{Name: "EGRESS_TOKEN_3", Source: Source{Kind: SourceEnv, Ref: "EMPTY_TOKEN"}},
	}, p.Slots)
	var hosts []string
	bound := map[string]Auth{}
	for _, r := range p.Routes {
		hosts = append(hosts, r.Host)
		if r.Auth != nil {
			bound[r.Host] = *r.Auth
		}
	}
	require.Equal(t, []string{"a.test", "api.anthropic.com", "b.test", "c.test", "d.test", "e.test", "z.test"}, hosts, "routes sorted by host")
	require.Equal(t, map[string]Auth{
		"api.anthropic.com": {Scheme: "Bearer", Slot: "EGRESS_TOKEN_0"},
		"c.test":            {Scheme: "Bearer", Slot: "EGRESS_TOKEN_0"},
		"z.test":            {Scheme: "token", Slot: "EGRESS_TOKEN_1"},
		"a.test":            {Scheme: "Bearer", Slot: "EGRESS_TOKEN_1"},
		"b.test":            {Scheme: "Bearer", Slot: "EGRESS_TOKEN_2"},
		"d.test":            {Scheme: "Bearer", Slot: "EGRESS_TOKEN_3"},
	}, bound)
	require.False(t, p.Slots[2].Present(), "an unset variable leaves the slot empty")
}

func TestCAFile(t *testing.T) {
	ca := testCAPEM(t)
	bundle := "-----BEGIN X509 CRL-----\nY3Js\n-----END X509 CRL-----\n" + ca
	tests := []struct {
		name    string
		caFile  string
		wantAbs string
		pem     string
	}{
		{"relative to the manifest", "./certs/internal-ca.pem", "/bottle/certs/internal-ca.pem", ca},
		{"bare name", "internal-ca.pem", "/bottle/internal-ca.pem", ca},
		{"absolute", "/etc/egress/ca.pem", "/etc/egress/ca.pem", ca},
		{"certificate after another block", "bundle.pem", "/bottle/bundle.pem", bundle},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHost(routes("    - host: git.internal.test\n      upstream: {address: 127.0.0.1:8443, ca_file: " + tt.caFile + "}\n"))
			h.files[tt.wantAbs] = tt.pem
			r, ok := h.mustLoad(t).Route("git.internal.test")
			require.True(t, ok)
			require.Equal(t, Upstream{Address: "127.0.0.1:8443", CAFile: tt.wantAbs, CAPEM: []byte(tt.pem)}, r.Upstream)
		})
	}
}

// TestRelativeManifestPath checks that errors name the manifest as given
// while ca_file still resolves to an absolute path.
func TestRelativeManifestPath(t *testing.T) {
	h := newHost("")
	h.files = map[string]string{
		"examples/demo.md": "---\nname: demo\negress:\n  routes:\n    - host: a.test\n      upstream: {ca_file: ca.pem}\n---\n",
	}
	_, err := Load("examples/demo.md", h.options())
	wd, werr := os.Getwd()
	require.NoError(t, werr)
	want := "examples/demo.md:6: egress.routes[0].upstream.ca_file: cannot read " + filepath.Join(wd, "examples", "ca.pem") + ": no such file"
	require.EqualError(t, err, want)
}

// TestExamples loads the repository's example manifests from disk, through
// the default ReadFile, so they cannot drift from what Load accepts.
func TestExamples(t *testing.T) {
	t.Run("quickstart", func(t *testing.T) {
		p, err := Load(filepath.Join("..", "examples", "quickstart.md"), Options{
			LookupEnv: func(string) (string, bool) { return "", false },
		})
		require.NoError(t, err)
		require.Equal(t, "quickstart", p.Name)
		require.Equal(t, []Source{
			{Kind: SourceEnv, Ref: "GITHUB_TOKEN"},
			{Kind: SourceEnv, Ref: "EGRESSGATE_DEMO_TOKEN"},
		}, []Source{p.Slots[0].Source, p.Slots[1].Source})
	})
	t.Run("codex-host-login", func(t *testing.T) {
		home := t.TempDir()
		access := accessToken(t, testNow.Add(time.Hour), nil)
		require.NoError(t, os.WriteFile(filepath.Join(home, "auth.json"), []byte(authJSON(t, access)), 0o600))
		p, err := Load(filepath.Join("..", "examples", "codex-host-login.md"), Options{
			CodexHome: home,
			LookupEnv: func(string) (string, bool) { return "", false },
			Now:       func() time.Time { return testNow },
		})
		require.NoError(t, err)
		require.Equal(t, access, p.Slots[0].Value.Reveal())
	})
}
