package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFrontMatterLines checks that errors point at the file's own line
// whichever form the manifest takes.
func TestFrontMatterLines(t *testing.T) {
	tests := []struct {
		name string
		file string
		text string
		want []string
	}{
		{
			name: "markdown front matter",
			file: "/bottle/demo.md",
			text: "---\nname: demo\negress:\n  routes:\n    - host: Bad.Example\n---\n# Demo\n\nbody: [not yaml\n",
			want: []string{`/bottle/demo.md:5: egress.routes[0].host: "Bad.Example" must be lower case`},
		},
		{
			name: "front matter with CRLF and trailing blanks on the fences",
			file: "/bottle/demo.md",
			text: "--- \r\nname: demo\r\nbogus: 1\r\n---\r\nbody\r\n",
			want: []string{`/bottle/demo.md:3: top level: unknown key "bogus"; allowed: name, agent_provider, dlp, egress`},
		},
		{
			name: "plain yaml",
			file: "/bottle/demo.yaml",
			text: "# comment\nname: demo\negress:\n  routes:\n    - host: Bad.Example\n",
			want: []string{`/bottle/demo.yaml:5: egress.routes[0].host: "Bad.Example" must be lower case`},
		},
		{
			name: "plain yaml with a document marker",
			file: "/bottle/demo.yaml",
			text: "---\nname: demo\negress:\n  routes:\n    - host: Bad.Example\n",
			want: []string{`/bottle/demo.yaml:5: egress.routes[0].host: "Bad.Example" must be lower case`},
		},
		{
			name: "markdown without front matter",
			file: "/bottle/demo.md",
			text: "# Demo\n\nname: demo\n",
			want: []string{"/bottle/demo.md:1: no YAML front matter: a Markdown manifest starts with a --- line, then YAML, then a --- line"},
		},
		{
			name: "markdown front matter never closed",
			file: "/bottle/demo.md",
			text: "---\nname: demo\n",
			want: []string{"/bottle/demo.md:1: front matter is not closed: add a --- line after the YAML"},
		},
		{
			name: "yaml syntax error",
			file: "/bottle/demo.md",
			text: "---\nname: demo\negress:\n  routes: [\n---\n",
			want: []string{"/bottle/demo.md:4: invalid YAML: did not find expected node content"},
		},
		{
			name: "unclosed flow mapping",
			file: "/bottle/demo.yaml",
			text: "name: demo\negress:\n  routes:\n    - host: a.test\n      auth: {scheme: Bearer, token_ref: X\n",
			want: []string{"/bottle/demo.yaml:5: invalid YAML: did not find expected ',' or '}' (a { opened here is not closed)"},
		},
		{
			name: "unclosed flow list",
			file: "/bottle/demo.yaml",
			text: "name: demo\negress:\n  routes:\n    - host: a.test\n      matches: [1, 2\n",
			want: []string{"/bottle/demo.yaml:5: invalid YAML: did not find expected ',' or ']' (a [ opened here is not closed)"},
		},
		{
			name: "yaml error without a line",
			file: "/bottle/demo.yaml",
			text: "name: demo\x00\n",
			want: []string{"/bottle/demo.yaml: invalid YAML: control characters are not allowed"},
		},
		{
			name: "two yaml documents",
			file: "/bottle/demo.yaml",
			text: "name: demo\n---\nname: other\n",
			want: []string{"/bottle/demo.yaml:2: a manifest is one YAML document; remove the second one"},
		},
		{
			name: "yaml file with a document marker and a second document",
			file: "/bottle/demo.yaml",
			text: "---\nname: demo\n---\negress:\n  routes: []\n",
			want: []string{"/bottle/demo.yaml:3: a manifest is one YAML document; remove the second one"},
		},
		{
			name: "fenced yaml file",
			file: "/bottle/demo.yaml",
			text: "---\nname: demo\negress:\n  routes: [{host: \"a test\"}]\n---\n# A body for people\n\nIt is ignored.\n",
			want: []string{`/bottle/demo.yaml:4: egress.routes[0].host: "a test" is not a DNS name (labels of a-z, 0-9 and -, joined by dots)`},
		},
		{
			name: "empty file",
			file: "/bottle/demo.yaml",
			text: "",
			want: []string{"/bottle/demo.yaml: name: required"},
		},
		{
			name: "empty front matter",
			file: "/bottle/demo.md",
			text: "---\n---\nbody\n",
			want: []string{"/bottle/demo.md: name: required"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHost("")
			h.files = map[string]string{tt.file: tt.text}
			_, err := Load(tt.file, h.options())
			require.Error(t, err)
			require.Equal(t, tt.want, splitLines(err.Error()))
		})
	}
}

func TestMissingManifest(t *testing.T) {
	h := newHost("")
	_, err := Load("/bottle/nope.md", h.options())
	require.EqualError(t, err, "/bottle/nope.md: cannot read manifest: no such file")
}

// TestShapeErrors covers what the YAML decoder checks: unknown keys and
// duplicate keys at every level, and values of the wrong type.
func TestShapeErrors(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string
	}{
		{
			name: "unknown top-level key",
			text: "name: demo\nroutes: []\n",
			want: []string{`:2: top level: unknown key "routes"; allowed: name, agent_provider, dlp, egress`},
		},
		{
			name: "unknown provider key",
			text: "name: demo\nagent_provider:\n  template: codex\n  forward: true\n",
			want: []string{`:4: agent_provider: unknown key "forward"; did you mean forward_host_credentials? allowed: template, forward_host_credentials, refresh_host_credentials, auth_token`},
		},
		{
			// One mistake, one error: the host the typo meant is not also
			// reported missing.
			name: "unknown route key",
			text: routes("    - host: a.test\n    - hots: b.test\n"),
			want: []string{
				`:5: egress.routes[1]: unknown key "hots"; did you mean host? allowed: host, tls, auth, matches, upstream, dlp`,
			},
		},
		{
			name: "a typo in auth",
			text: routes("    - host: a.test\n      auth: {scheme: Bearer, token-ref: GITHUB_TOKEN}\n"),
			want: []string{
				`:5: egress.routes[0].auth: unknown key "token-ref"; did you mean token_ref? allowed: scheme, header, token_ref, token_file`,
			},
		},
		{
			name: "far from every key",
			text: "name: demo\nflavour: x\n",
			want: []string{`:2: top level: unknown key "flavour"; allowed: name, agent_provider, dlp, egress`},
		},
		{
			name: "unknown keys deep down",
			text: routes("    - host: a.test\n      auth: {scheme: Bearer, token_ref: A, realm: x}\n" +
				"      matches:\n        - paths: [{type: prefix, value: /a, regex: x}]\n" +
				"      upstream: {address: 'a:1', sni: b}\n"),
			want: []string{
				`:5: egress.routes[0].auth: unknown key "realm"; allowed: scheme, header, token_ref, token_file`,
				`:7: egress.routes[0].matches[0].paths[0]: unknown key "regex"; allowed: type, value`,
				`:8: egress.routes[0].upstream: unknown key "sni"; allowed: address, ca_file`,
			},
		},
		{
			name: "duplicate keys",
			text: "name: demo\nname: again\negress:\n  routes:\n    - host: a.test\n      tls: passthrough\n      tls: intercept\n",
			want: []string{
				`:2: name: duplicate key (first at line 1)`,
				`:7: egress.routes[0].tls: duplicate key (first at line 6)`,
			},
		},
		{
			name: "wrong types",
			text: "name: [demo]\nagent_provider:\n  template: codex\n  forward_host_credentials: yes\n" +
				"egress:\n  routes:\n    - host: a.test\n      auth: Bearer\n      matches: {paths: []}\n",
			want: []string{
				`:1: name: want a string, got a list`,
				`:4: agent_provider.forward_host_credentials: want true or false, got a string`,
				`:8: egress.routes[0].auth: want a mapping, got a string`,
				`:9: egress.routes[0].matches: want a list, got a mapping`,
			},
		},
		{
			name: "a wrong type is reported once",
			text: "name: demo\nagent_provider:\n  template: [codex]\n  forward_host_credentials: true\n",
			want: []string{`:3: agent_provider.template: want a string, got a list`},
		},
		{
			name: "aliases",
			text: routes("    - host: a.test\n      matches: &m\n        - methods: [GET]\n    - host: b.test\n      matches: *m\n"),
			want: []string{`:8: egress.routes[1].matches: aliases (*m) are not supported; write the value out`},
		},
		{
			name: "top level not a mapping",
			text: "- name: demo\n",
			want: []string{`:1: top level: want a mapping, got a list`},
		},
		{
			name: "null values mean absent",
			text: "name: demo\nagent_provider:\negress:\n  routes:\n    - host: a.test\n      auth:\n      matches:\n    - tls: ~\n",
			want: []string{`:8: egress.routes[1].host: required`},
		},
		{
			name: "every error in one run, in line order",
			text: "name: Demo\nagent_provider:\n  template: codx\negress:\n  routes:\n    - host: https://a.test\n      tls: passthru\n      colour: red\n",
			want: []string{
				`:1: name: "Demo" may hold only a-z, 0-9 and -`,
				`:3: agent_provider.template: "codx" is not one of codex, claude, none`,
				`:6: egress.routes[0].host: "https://a.test" is a URL; give the host name only`,
				`:7: egress.routes[0].tls: "passthru" is not one of intercept, passthrough`,
				`:8: egress.routes[0]: unknown key "colour"; allowed: host, tls, auth, matches, upstream, dlp`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, withFile(tt.want), newHost(tt.text).loadErrors(t))
		})
	}
}

// withFile puts the test manifest's name in front of ":LINE: msg" lines.
func withFile(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = testManifest + l
	}
	return out
}
