package config

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTokenFile checks where a token_file is looked for and what its
// value is. A missing or empty file leaves the slot empty rather than
// failing the load, exactly like an unset token_ref variable.
func TestTokenFile(t *testing.T) {
	tests := []struct {
		name      string
		tokenFile string
		path      string // the resolved path
		content   *string
		want      string
	}{
		{"relative to the manifest", "./secrets/github-token", "/bottle/secrets/github-token", ptr("ghp_filetoken\n"), "ghp_filetoken"},
		{"bare name", "github-token", "/bottle/github-token", ptr("ghp_filetoken"), "ghp_filetoken"},
		{"absolute", "/run/secrets/gh", "/run/secrets/gh", ptr("ghp_filetoken\n"), "ghp_filetoken"},
		{"absolute, cleaned", "/run/secrets/../secrets//gh", "/run/secrets/gh", ptr("ghp_filetoken\n"), "ghp_filetoken"},
		{"whitespace around", "tok", "/bottle/tok", ptr("  \tghp_filetoken \r\n\n"), "ghp_filetoken"},
		{"missing", "secrets/later", "/bottle/secrets/later", nil, ""},
		{"empty", "tok", "/bottle/tok", ptr(""), ""},
		{"only a newline", "tok", "/bottle/tok", ptr("\n"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHost(routes("    - host: api.github.com\n      auth: {scheme: Bearer, token_file: '" + tt.tokenFile + "'}\n"))
			if tt.content != nil {
				h.files[tt.path] = *tt.content
			}
			p := h.mustLoad(t)
			require.Equal(t, []Slot{{
				Name:   "EGRESS_TOKEN_0",
				Source: Source{Kind: SourceFile, Ref: tt.path},
				Value:  NewSecret(tt.want),
			}}, p.Slots)
			r, ok := p.Route("api.github.com")
			require.True(t, ok)
			require.Equal(t, &Auth{Scheme: "Bearer", Slot: "EGRESS_TOKEN_0"}, r.Auth)
		})
	}
}

func ptr(s string) *string { return &s }

// TestTokenFileSharedSlot checks that routes naming one file, however
// spelled, share its slot and the file is read once; and that a file and
// an env var never share a slot.
func TestTokenFileSharedSlot(t *testing.T) {
	h := newHost(routes(`    - host: a.test
      auth: {scheme: Bearer, token_file: ./tok}
    - host: b.test
      auth: {scheme: token, token_ref: TOK}
    - host: c.test
      auth: {scheme: token, token_file: /bottle/tok}
    - host: d.test
      auth: {scheme: Bearer, token_file: other}
`))
	h.files["/bottle/tok"] = "file-token\n"
	h.env["TOK"] = "env-token"
	p := h.mustLoad(t)

	require.Equal(t, []Slot{
		{Name: "EGRESS_TOKEN_0", Source: Source{Kind: SourceFile, Ref: "/bottle/tok"}, Value: NewSecret("file-token")},
		{Name: "EGRESS_TOKEN_1", Source: Source{Kind: SourceEnv, Ref: "TOK"}, Value: NewSecret("env-token")},
		{Name: "EGRESS_TOKEN_2", Source: Source{Kind: SourceFile, Ref: "/bottle/other"}},
	}, p.Slots)
	c, ok := p.Route("c.test")
	require.True(t, ok)
	require.Equal(t, &Auth{Scheme: "token", Slot: "EGRESS_TOKEN_0"}, c.Auth)
	require.Equal(t, []string{testManifest, "/bottle/tok", "/bottle/other"}, h.opened)
}

// TestTokenFileErrors covers the token_file problems that fail a load.
// None may quote the file's contents or a token pasted as the file name.
func TestTokenFileErrors(t *testing.T) {
	const pasted = "ghp_PastedToken0123456789"
	tests := []struct {
		name string
		auth string // the route's auth block, starting on line 5
		want []string
	}{
		{
			"both sources",
			"      auth: {scheme: Bearer, token_ref: A_TOKEN, token_file: tok}\n",
			[]string{`:5: egress.routes[0].auth.token_file: set token_ref or token_file, not both`},
		},
		{
			"unreadable",
			"      auth:\n        scheme: Bearer\n        token_file: locked\n",
			[]string{`:7: egress.routes[0].auth.token_file: cannot read /bottle/locked: permission denied`},
		},
		{
			"more than one line",
			"      auth: {scheme: Bearer, token_file: two-lines}\n",
			[]string{`:5: egress.routes[0].auth.token_file: /bottle/two-lines must hold only the token: one line of printable ASCII without spaces`},
		},
		{
			"a whole header",
			"      auth: {scheme: Bearer, token_file: header}\n",
			[]string{`:5: egress.routes[0].auth.token_file: /bottle/header must hold only the token: one line of printable ASCII without spaces`},
		},
		{
			"a token in the file's place",
			"      auth: {scheme: Bearer, token_file: " + pasted + "}\n",
			[]string{`:5: egress.routes[0].auth.token_file: looks like a token, not a file name: put the token in a file and name that file here`},
		},
		{
			"a JWT in the file's place",
			"      auth: {scheme: Bearer, token_file: ./eyJhbGciOiJIUzI1NiJ9.e30.c2ln}\n",
			[]string{`:5: egress.routes[0].auth.token_file: looks like a token, not a file name: put the token in a file and name that file here`},
		},
		{
			"control character in the path",
			"      auth: {scheme: Bearer, token_file: \"tok\\n\"}\n",
			[]string{`:5: egress.routes[0].auth.token_file: must be a file path without control characters`},
		},
		{
			"wrong type is reported once",
			"      auth: {scheme: Bearer, token_file: [tok]}\n",
			[]string{`:5: egress.routes[0].auth.token_file: want a string, got a list`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHost(routes("    - host: a.test\n" + tt.auth))
			h.fail = map[string]error{"/bottle/locked": &fs.PathError{Op: "open", Path: "/bottle/locked", Err: fs.ErrPermission}}
			h.files["/bottle/two-lines"] = "tok-SECRET\nX-Injected: 1\n"
			h.files["/bottle/header"] = "Bearer tok-SECRET\n"
			got := h.loadErrors(t)
			require.Equal(t, withFile(tt.want), got)
			for _, secret := range []string{"SECRET", "X-Injected", pasted} {
				require.NotContains(t, strings.Join(got, "\n"), secret)
			}
		})
	}
}

// TestTokenFileOnDisk reads through the default ReadFile, so the messages
// are the ones a person sees for real files.
func TestTokenFileOnDisk(t *testing.T) {
	dir := t.TempDir()
	manifest := filepath.Join(dir, "bottle.yaml")
	write := func(text string) {
		require.NoError(t, os.WriteFile(manifest, []byte(routes("    - host: a.test\n      auth: {scheme: Bearer, token_file: "+text+"}\n")), 0o600))
	}
	opts := Options{LookupEnv: func(string) (string, bool) { return "", false }}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "secrets", "adir"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secrets", "tok"), []byte("file-token\n"), 0o600))

	write("secrets/tok")
	p, err := Load(manifest, opts)
	require.NoError(t, err)
	require.Equal(t, "file-token", p.Slots[0].Value.Reveal())

	write("secrets/adir")
	_, err = Load(manifest, opts)
	require.EqualError(t, err, manifest+":5: egress.routes[0].auth.token_file: cannot read "+filepath.Join(dir, "secrets", "adir")+": is a directory")
}

func TestSourceDisplay(t *testing.T) {
	tests := []struct {
		source   Source
		str, fix string
	}{
		{Source{Kind: SourceFile, Ref: "/bottle/secrets/gh"}, "file /bottle/secrets/gh", "write the token to /bottle/secrets/gh on the host"},
		{Source{Kind: SourceEnv, Ref: "GH"}, "env GH", "set GH in egressgate's environment on the host and restart egressgate"},
		{Source{Kind: SourceCodex, Ref: testAuthJSON}, "codex " + testAuthJSON, "run `codex login --device-auth` on the host"},
	}
	for _, tt := range tests {
		t.Run(string(tt.source.Kind), func(t *testing.T) {
			require.Equal(t, tt.str, tt.source.String())
			require.Equal(t, tt.fix, tt.source.Fix())
		})
	}
}
