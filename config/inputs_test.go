package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestInputs(t *testing.T) {
	ca := testCAPEM(t)
	const twoRoutes = "egress:\n  routes:\n" +
		"    - host: a.test\n      upstream: {ca_file: ca.pem}\n" +
		"    - host: b.test\n      upstream: {ca_file: /bottle/ca.pem}\n      auth: {scheme: Bearer, token_file: secrets/present}\n" +
		"    - host: c.test\n      auth: {scheme: Bearer, token_file: secrets/missing}\n" +
		"    - host: d.test\n      auth: {scheme: Bearer, token_ref: ENV_TOKEN}\n" +
		"    - host: e.test\n      auth: {scheme: Bearer, token_file: ./secrets/present}\n"
	tests := []struct {
		name string
		text string
		want []string
	}{
		{"manifest alone", "name: demo\n", []string{testManifest}},
		{
			"ca and token files, sorted and unique; missing ones too",
			"name: demo\n" + twoRoutes,
			[]string{"/bottle/ca.pem", testManifest, "/bottle/secrets/missing", "/bottle/secrets/present"},
		},
		{
			"codex auth.json while forwarded",
			codexManifest("true") + twoRoutes,
			[]string{"/bottle/ca.pem", testManifest, "/bottle/secrets/missing", "/bottle/secrets/present", testAuthJSON},
		},
		// Invariant 5: not forwarded, auth.json is not an input, so the
		// watcher never learns its path.
		{"codex not forwarded", codexManifest("false"), []string{testManifest}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHost(tt.text)
			h.files["/bottle/ca.pem"] = ca
			h.files["/bottle/secrets/present"] = "tok\n"
			h.files[testAuthJSON] = authJSON(t, accessToken(t, testNow.Add(time.Hour), nil))
			p := h.mustLoad(t)
			require.Equal(t, tt.want, p.Inputs)
			require.Equal(t, testManifest, p.Manifest, "Manifest stays as given")
		})
	}
}

// TestInputsAbsolute checks that a manifest named relative to the working
// directory still yields absolute inputs, as a watcher needs.
func TestInputsAbsolute(t *testing.T) {
	wd, err := os.Getwd()
	require.NoError(t, err)
	h := newHost("")
	h.files = map[string]string{
		"examples/demo.yaml": "name: demo\negress:\n  routes:\n    - host: a.test\n      auth: {scheme: Bearer, token_file: tok}\n",
	}
	p, err := Load("examples/demo.yaml", h.options())
	require.NoError(t, err)
	require.Equal(t, "examples/demo.yaml", p.Manifest)
	require.Equal(t, []string{filepath.Join(wd, "examples", "demo.yaml"), filepath.Join(wd, "examples", "tok")}, p.Inputs)
}

func TestManifestInputs(t *testing.T) {
	wd, err := os.Getwd()
	require.NoError(t, err)
	require.Equal(t, []string{filepath.Join(wd, "examples", "demo.md")}, ManifestInputs("examples/./demo.md"))
	require.Equal(t, []string{"/bottle/demo.md"}, ManifestInputs("/bottle//demo.md"))
}
