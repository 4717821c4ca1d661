package config

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

var updateSchema = flag.Bool("update", false, "rewrite docs/manifest.schema.json from the Go types")

const schemaFile = "../docs/manifest.schema.json"

// TestSchemaFileUpToDate: the committed schema is what the Go types say
// today; `go test ./config -run Schema -update` rewrites it.
func TestSchemaFileUpToDate(t *testing.T) {
	want, err := SchemaJSON()
	require.NoError(t, err)
	if *updateSchema {
		require.NoError(t, os.WriteFile(schemaFile, want, 0o644))
	}
	got, err := os.ReadFile(schemaFile)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got), "docs/manifest.schema.json is stale: go test ./config -run Schema -update")
}

// compiledSchema is the committed schema as an editor would load it.
func compiledSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(schemaFile)
	require.NoError(t, err)
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	require.NoError(t, c.AddResource("manifest.schema.json", doc))
	s, err := c.Compile("manifest.schema.json")
	require.NoError(t, err)
	return s
}

// manifestJSON is a manifest's YAML (front matter for Markdown) as the
// JSON value a schema validates.
func manifestJSON(t *testing.T, file string, data []byte) any {
	t.Helper()
	errs := &errList{file: file}
	src, ok := yamlSource(file, data, errs)
	require.True(t, ok, "%v", errs.err())
	var v any
	require.NoError(t, yaml.Unmarshal(src, &v))
	// Round trip through JSON, the form the validator takes.
	j, err := json.Marshal(v)
	require.NoError(t, err)
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	require.NoError(t, err)
	return out
}

// TestEveryExampleMatchesSchema: each manifest in the repository (the
// examples and the translator's golden inputs) validates against the
// schema, so the schema never refuses what egressgate documents.
func TestEveryExampleMatchesSchema(t *testing.T) {
	s := compiledSchema(t)
	var files []string
	for _, glob := range []string{"../examples/*.md", "../examples/*.yaml", "../xds/testdata/in/*.yaml"} {
		m, err := filepath.Glob(glob)
		require.NoError(t, err)
		files = append(files, m...)
	}
	require.GreaterOrEqual(t, len(files), 8, "the examples and golden inputs are found")
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			require.NoError(t, err)
			assert.NoError(t, s.Validate(manifestJSON(t, file, data)))
		})
	}
}

// TestSchemaRefusesWhatLoadRefuses: mistakes an editor should flag as they
// are typed, each also refused by Load.
func TestSchemaRefusesWhatLoadRefuses(t *testing.T) {
	s := compiledSchema(t)
	tests := map[string]string{
		"misspelt key":            routes("    - host: a.test\n      auth: {scheme: Bearer, tokn_ref: A_TOKEN}\n"),
		"no name":                 "egress:\n  routes:\n    - host: a.test\n",
		"bad template":            "name: demo\nagent_provider: {template: cursor}\n",
		"bad tls":                 routes("    - host: a.test\n      tls: passthru\n"),
		"scheme and header":       routes("    - host: a.test\n      auth: {scheme: Bearer, header: x-api-key, token_ref: A}\n"),
		"no scheme nor header":    routes("    - host: a.test\n      auth: {token_ref: A}\n"),
		"no token source":         routes("    - host: a.test\n      auth: {scheme: Bearer}\n"),
		"both token sources":      routes("    - host: a.test\n      auth: {scheme: Bearer, token_ref: A, token_file: a}\n"),
		"token instead of ref":    routes("    - host: a.test\n      auth: {scheme: Bearer, token_ref: ghp_abc123}\n"),
		"passthrough with auth":   routes("    - host: a.test\n      tls: passthrough\n      auth: {scheme: Bearer, token_ref: A}\n"),
		"passthrough with match":  routes("    - host: a.test\n      tls: passthrough\n      matches: [{methods: [GET]}]\n"),
		"empty match":             routes("    - host: a.test\n      matches: [{}]\n"),
		"relative path":           routes("    - host: a.test\n      matches: [{paths: [{type: prefix, value: api}]}]\n"),
		"path with query":         routes("    - host: a.test\n      matches: [{paths: [{type: exact, value: '/a?b=1'}]}]\n"),
		"unknown method":          routes("    - host: a.test\n      matches: [{methods: [FETCH]}]\n"),
		"host with port":          routes("    - host: a.test:443\n"),
		"upper-case host":         routes("    - host: A.test\n"),
		"address without port":    routes("    - host: a.test\n      upstream: {address: 127.0.0.1}\n"),
		"wrong type for a bool":   "name: demo\nagent_provider: {template: codex, forward_host_credentials: yes please}\n",
		"route list is a mapping": "name: demo\negress:\n  routes: {host: a.test}\n",
		"bad dlp mode":            "name: demo\ndlp: {mode: warn}\n",
		"bad large_body":          "name: demo\ndlp: {large_body: truncate}\n",
		"max_body_bytes zero":     "name: demo\ndlp: {max_body_bytes: 0}\n",
		"max_body_bytes too big":  "name: demo\ndlp: {max_body_bytes: 67108865}\n",
		"max_body_bytes a string": "name: demo\ndlp: {max_body_bytes: 8MiB}\n",
		"literal and regex":       "name: demo\ndlp:\n  patterns: [{name: a, literal: BLUEHERON-7731, regex: 'x+'}]\n",
		"no literal nor regex":    "name: demo\ndlp:\n  patterns: [{name: a}]\n",
		"short literal":           "name: demo\ndlp:\n  patterns: [{name: a, literal: HERON-7}]\n",
		"pattern without a name":  "name: demo\ndlp:\n  patterns: [{literal: BLUEHERON-7731}]\n",
		"pattern name upper case": "name: demo\ndlp:\n  patterns: [{name: Corp, literal: BLUEHERON-7731}]\n",
		"fingerprint upper case":  "name: demo\ndlp: {allow: [0123456789AB]}\n",
		"route-level patterns":    routes("    - host: a.test\n      dlp: {patterns: []}\n"),
		"passthrough scanned":     routes("    - host: a.test\n      tls: passthrough\n      dlp: {mode: block}\n"),
		"passthrough large_body":  routes("    - host: a.test\n      tls: passthrough\n      dlp: {mode: off, large_body: pass}\n"),
	}
	for name, manifest := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Error(t, s.Validate(manifestJSON(t, "m.yaml", []byte(manifest))), "the schema lets it through")
			h := newHost(manifest)
			h.env["A"] = "a-token"
			_, err := h.load()
			assert.Error(t, err, "Load takes it, so the schema must too")
		})
	}
	for _, ok := range []string{
		routes("    - host: a.test\n      auth:\n      matches: [{methods: [get, Post]}]\n      upstream:\n"),
		routes("    - host: a.test\n      matches: []\n"),
		routes("    - host: a.test\n      auth: {header: X-Api-Key, token_file: key}\n"),
		"name: demo\ndlp:\n  mode: log\n  large_body: pass\n  max_body_bytes: 1048576\n" +
			"  patterns: [{name: corp-token, regex: 'corp_[a-z]{8}'}, {name: codename, literal: BLUEHERON-7731}]\n  allow: ['0123456789ab']\n",
		routes("    - host: a.test\n      dlp: {mode: off}\n    - host: b.test\n      tls: passthrough\n      dlp: {mode: off}\n    - host: c.test\n      tls: passthrough\n      dlp:\n"),
	} {
		assert.NoError(t, s.Validate(manifestJSON(t, "m.yaml", []byte(ok))), "Load takes it, so the schema must:\n%s", ok)
		_, err := newHost(ok).load()
		require.NoError(t, err, ok)
	}
}
