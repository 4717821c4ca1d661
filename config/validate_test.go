package config

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestValidation covers every rule on a manifest's values, each with the
// line its error must point at. Route lists start on line 4.
func TestValidation(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string
	}{
		// name
		{"name missing", "egress: {}\n", []string{`:1: name: required`}},
		{"name not a node id", "name: my_bottle\n", []string{`:1: name: "my_bottle" may hold only a-z, 0-9 and -`}},
		{"name too long", "name: " + strings.Repeat("a", 64) + "\n", []string{`:1: name: must be at most 63 characters, not 64`}},

		// agent_provider
		{
			"unknown template",
			"name: demo\nagent_provider:\n  template: gemini\n",
			[]string{`:3: agent_provider.template: "gemini" is not one of codex, claude, none`},
		},
		{
			"auth_token outside claude",
			"name: demo\nagent_provider:\n  template: codex\n  auth_token: TOKEN\n",
			[]string{`:4: agent_provider.auth_token: only the claude template takes auth_token`},
		},
		{
			"claude auth_token not a variable name",
			"name: demo\nagent_provider:\n  template: claude\n  auth_token: sk-ant-oat01-abc\n",
			[]string{`:4: agent_provider.auth_token: must name a host environment variable (A-Z, 0-9 and _, not starting with a digit), never hold the token itself`},
		},
		{
			"claude forwarding without auth_token, nowhere to find the login",
			"name: demo\nagent_provider:\n  template: claude\n  forward_host_credentials: true\n",
			[]string{`:4: agent_provider.forward_host_credentials: cannot find Claude Code's login: set CLAUDE_CONFIG_DIR or HOME, or name a host variable in auth_token`},
		},
		{
			"refresh without codex forwarding",
			"name: demo\nagent_provider:\n  template: claude\n  auth_token: TOKEN\n  forward_host_credentials: true\n  refresh_host_credentials: true\n",
			[]string{`:6: agent_provider.refresh_host_credentials: only a codex bottle with forward_host_credentials: true has a host login to refresh`},
		},
		{
			"forwarding with no template",
			"name: demo\nagent_provider:\n  forward_host_credentials: true\n",
			[]string{`:3: agent_provider.forward_host_credentials: template none has no host credentials to forward; set template to codex or claude`},
		},

		// host
		{"host missing", routes("    - tls: passthrough\n"), []string{`:4: egress.routes[0].host: required`}},
		{"host is a URL", routes("    - host: https://a.test/x\n"), []string{`:4: egress.routes[0].host: "https://a.test/x" is a URL; give the host name only`}},
		{"host has a port", routes("    - host: a.test:8443\n"), []string{`:4: egress.routes[0].host: "a.test:8443" has a port; set upstream.address to reach another port`}},
		{"host has a path", routes("    - host: a.test/x\n"), []string{`:4: egress.routes[0].host: "a.test/x" has a path; a route names a host, paths go in matches`}},
		{"host is a wildcard", routes("    - host: '*.a.test'\n"), []string{`:4: egress.routes[0].host: "*.a.test" has a wildcard; list each host`}},
		{"host upper case", routes("    - host: A.test\n"), []string{`:4: egress.routes[0].host: "A.test" must be lower case`}},
		{"host is an IP", routes("    - host: 10.0.0.1\n"), []string{`:4: egress.routes[0].host: "10.0.0.1" is an IP address; name the DNS host and set upstream.address to the IP`}},
		{"host too long", routes("    - host: " + strings.Repeat("abcdefghi.", 26) + "test\n"), []string{`:4: egress.routes[0].host: "` + strings.Repeat("abcdefghi.", 26) + `test" is longer than 253 characters`}},
		{"host bad label", routes("    - host: a..test\n"), []string{`:4: egress.routes[0].host: "a..test" is not a DNS name (labels of a-z, 0-9 and -, joined by dots)`}},
		{"host label dash", routes("    - host: -a.test\n"), []string{`:4: egress.routes[0].host: "-a.test" is not a DNS name (labels of a-z, 0-9 and -, joined by dots)`}},
		{
			"host twice",
			routes("    - host: a.test\n    - host: b.test\n    - host: a.test\n"),
			[]string{`:6: egress.routes[2].host: a.test is already routed by egress.routes[0]; list each host once`},
		},

		// tls
		{"tls unknown", routes("    - host: a.test\n      tls: passthru\n"), []string{`:5: egress.routes[0].tls: "passthru" is not one of intercept, passthrough`}},

		// auth
		{
			"auth scheme unknown",
			routes("    - host: a.test\n      auth:\n        scheme: Basic\n        token_ref: A_TOKEN\n"),
			[]string{`:6: egress.routes[0].auth.scheme: "Basic" is not one of Bearer, token`},
		},
		{
			"auth fields missing",
			routes("    - host: a.test\n      auth: {}\n"),
			[]string{
				`:5: egress.routes[0].auth.scheme: required`,
				`:5: egress.routes[0].auth: set token_ref (a host environment variable) or token_file (a file on the host holding the token)`,
			},
		},
		{
			"token_ref not a variable name",
			routes("    - host: a.test\n      auth: {scheme: token, token_ref: ghp_Secret123}\n"),
			[]string{`:5: egress.routes[0].auth.token_ref: must name a host environment variable (A-Z, 0-9 and _, not starting with a digit), never hold the token itself`},
		},
		{
			"auth on passthrough",
			routes("    - host: a.test\n      tls: passthrough\n      auth: {scheme: Bearer, token_ref: A}\n"),
			[]string{`:5: egress.routes[0].tls: a route with auth cannot be passthrough: Envoy cannot add a credential inside a TLS tunnel`},
		},

		// matches
		{
			"matches on passthrough",
			routes("    - host: a.test\n      tls: passthrough\n      matches:\n        - methods: [GET]\n"),
			[]string{`:6: egress.routes[0].matches: a passthrough route cannot have matches: Envoy cannot see paths inside a TLS tunnel`},
		},
		{
			"empty match",
			routes("    - host: a.test\n      matches:\n        - paths: []\n"),
			[]string{`:6: egress.routes[0].matches[0]: set paths, methods or both; leave matches out to allow every request`},
		},
		{
			"path type unknown and missing",
			routes("    - host: a.test\n      matches:\n        - paths:\n            - {type: regex, value: /a}\n            - {value: /b}\n"),
			[]string{
				`:7: egress.routes[0].matches[0].paths[0].type: "regex" is not one of prefix, exact`,
				`:8: egress.routes[0].matches[0].paths[1].type: required`,
			},
		},
		{
			"path value missing, relative, with a query",
			routes("    - host: a.test\n      matches:\n        - paths:\n            - type: prefix\n" +
				"            - {type: exact, value: repos}\n            - {type: exact, value: '/a?b=1'}\n"),
			[]string{
				`:7: egress.routes[0].matches[0].paths[0].value: required`,
				`:8: egress.routes[0].matches[0].paths[1].value: "repos" must start with /`,
				`:9: egress.routes[0].matches[0].paths[2].value: "/a?b=1" must not hold a query or fragment`,
			},
		},
		{
			"path value with a space",
			routes("    - host: a.test\n      matches:\n        - paths: [{type: prefix, value: '/a b'}]\n"),
			[]string{`:6: egress.routes[0].matches[0].paths[0].value: "/a b" must not hold spaces or control characters`},
		},
		{
			"method unknown",
			routes("    - host: a.test\n      matches:\n        - methods: [get, FETCH]\n"),
			[]string{`:6: egress.routes[0].matches[0].methods[1]: "FETCH" is not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, CONNECT, TRACE`},
		},

		// upstream
		{"address without port", routes("    - host: a.test\n      upstream: {address: 127.0.0.1}\n"), []string{`:5: egress.routes[0].upstream.address: "127.0.0.1" is not host:port with a port from 1 to 65535`}},
		{"address port zero", routes("    - host: a.test\n      upstream:\n        address: 'h:0'\n"), []string{`:6: egress.routes[0].upstream.address: "h:0" is not host:port with a port from 1 to 65535`}},
		{"address port too big", routes("    - host: a.test\n      upstream:\n        address: 'h:65536'\n"), []string{`:6: egress.routes[0].upstream.address: "h:65536" is not host:port with a port from 1 to 65535`}},
		{"address without host", routes("    - host: a.test\n      upstream:\n        address: ':443'\n"), []string{`:6: egress.routes[0].upstream.address: ":443" is not host:port with a port from 1 to 65535`}},
		{
			"ca_file on passthrough",
			routes("    - host: a.test\n      tls: passthrough\n      upstream:\n        ca_file: ca.pem\n"),
			[]string{`:7: egress.routes[0].upstream.ca_file: a passthrough route cannot have ca_file: inside a TLS tunnel the agent, not Envoy, verifies the upstream`},
		},
		{
			"ca_file missing",
			routes("    - host: a.test\n      upstream:\n        ca_file: ./missing.pem\n"),
			[]string{`:6: egress.routes[0].upstream.ca_file: cannot read /bottle/missing.pem: no such file`},
		},
		{
			"ca_file unreadable",
			routes("    - host: a.test\n      upstream:\n        ca_file: locked.pem\n"),
			[]string{`:6: egress.routes[0].upstream.ca_file: cannot read /bottle/locked.pem: permission denied`},
		},
		{
			"ca_file not a certificate",
			routes("    - host: a.test\n      upstream:\n        ca_file: junk.pem\n"),
			[]string{`:6: egress.routes[0].upstream.ca_file: /bottle/junk.pem holds no PEM certificate`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHost(tt.text)
			h.fail = map[string]error{bottleFile("locked.pem"): &fs.PathError{Op: "open", Path: bottleFile("locked.pem"), Err: fs.ErrPermission}}
			h.files[bottleFile("junk.pem")] = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"
			got := h.loadErrors(t)
			require.Equal(t, withFile(tt.want), got)
			for _, secretish := range []string{"sk-ant-oat01-abc", "ghp_Secret123"} {
				require.NotContains(t, strings.Join(got, "\n"), secretish, "a value in a token's place is never echoed")
			}
		})
	}
}

// TestPassthroughCAFileNotRead checks that a ca_file Envoy will never use
// is not read either.
func TestPassthroughCAFileNotRead(t *testing.T) {
	h := newHost(routes("    - host: a.test\n      tls: passthrough\n      upstream: {ca_file: ca.pem}\n"))
	_, err := h.load()
	require.Error(t, err)
	require.Equal(t, []string{testManifest}, h.opened)
}

func TestMatchesNormalised(t *testing.T) {
	h := newHost(routes("    - host: a.test\n      matches:\n        - paths: [{type: exact, value: /x}]\n          methods: [get, Post, GET]\n"))
	r, ok := h.mustLoad(t).Route("a.test")
	require.True(t, ok)
	require.Equal(t, []Match{{
		Paths:   []PathMatch{{Type: PathExact, Value: "/x"}},
		Methods: []string{"GET", "POST"},
	}}, r.Matches)
}

// TestWarnings: a policy that is valid but refuses more than its author
// likely meant says so, at the line to look at, and naming no value.
func TestWarnings(t *testing.T) {
	h := newHost(routes("    - host: a.test\n      auth: {scheme: Bearer, token_ref: A_TOKEN}\n    - host: b.test\n      auth: {scheme: Bearer, token_ref: A_TOKEN}\n    - host: c.test\n      auth: {scheme: Bearer, token_ref: C_TOKEN}\n"))
	h.env["C_TOKEN"] = "c-token-value"
	var got []string
	for _, w := range h.mustLoad(t).Warnings() {
		got = append(got, w.Error())
	}
	require.Equal(t, []string{
		testManifest + ":5: A_TOKEN is not set or empty in this environment, so requests to a.test, b.test are refused until it holds the token; set A_TOKEN in egressgate's environment on the host and restart egressgate",
	}, got, "one warning per unset variable, none for a set one")

	h = newHost(routes("    - host: a.test\n      auth: {scheme: Bearer, token_file: tokens/a}\n"))
	require.Equal(t, []Error{{File: testManifest, Line: 5,
		Msg: "/bottle/tokens/a is missing or empty, so requests to a.test are refused until it holds the token; write the token to /bottle/tokens/a on the host"}},
		h.mustLoad(t).Warnings(), "a token file that is not there yet")

	h = newHost("name: demo\negress:\n  routes: []\n")
	require.Equal(t, []Error{{File: testManifest, Line: 3,
		Msg: "no routes: the bottle allows no host, so every request of its agent is refused; add egress.routes or an agent_provider.template"}},
		h.mustLoad(t).Warnings())

	h = newHost("name: demo\nagent_provider: {template: codex}\negress:\n  routes: []\n")
	require.Empty(t, h.mustLoad(t).Warnings(), "a template's routes are routes")
}
