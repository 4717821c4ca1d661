package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// withDLP builds a manifest whose dlp block starts on line 2, its first
// key on line 3, followed by routes.
func withDLP(dlp, routes string) string {
	return "name: demo\ndlp:\n" + dlp + "egress:\n  routes:\n" + routes
}

// TestDLPValidation covers every rule on the dlp keys, each with the line
// its error must point at.
func TestDLPValidation(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string
	}{
		// bottle setting
		{"mode unknown", withDLP("  mode: warn\n", ""), []string{`:3: dlp.mode: "warn" is not one of block, log, off`}},
		{"mode upper case", withDLP("  mode: Block\n", ""), []string{`:3: dlp.mode: "Block" is not one of block, log, off`}},
		{"large_body unknown", withDLP("  large_body: truncate\n", ""), []string{`:3: dlp.large_body: "truncate" is not one of block, pass`}},
		{"max_body_bytes zero", withDLP("  max_body_bytes: 0\n", ""), []string{`:3: dlp.max_body_bytes: must be from 1 to 67108864 (64 MiB), not 0`}},
		{"max_body_bytes negative", withDLP("  max_body_bytes: -1\n", ""), []string{`:3: dlp.max_body_bytes: must be from 1 to 67108864 (64 MiB), not -1`}},
		{"max_body_bytes over 64 MiB", withDLP("  max_body_bytes: 67108865\n", ""), []string{`:3: dlp.max_body_bytes: must be from 1 to 67108864 (64 MiB), not 67108865`}},
		{"max_body_bytes a string", withDLP("  max_body_bytes: 8MiB\n", ""), []string{`:3: dlp.max_body_bytes: want a whole number, got a string`}},
		{"max_body_bytes quoted", withDLP("  max_body_bytes: '1024'\n", ""), []string{`:3: dlp.max_body_bytes: want a whole number, got a string`}},
		{"max_body_bytes a fraction", withDLP("  max_body_bytes: 1.5\n", ""), []string{`:3: dlp.max_body_bytes: want a whole number, got a number`}},
		{"max_body_bytes past int64", withDLP("  max_body_bytes: 99999999999999999999\n", ""), []string{`:3: dlp.max_body_bytes: want a whole number, got a number`}},
		{"dlp a string", "name: demo\ndlp: block\n", []string{`:2: dlp: want a mapping, got a string`}},

		// patterns
		{
			"pattern with both and with neither",
			withDLP("  patterns:\n    - {name: both, literal: BLUEHERON-7731, regex: 'corp_[a-z]+'}\n    - name: neither\n", ""),
			[]string{
				`:4: dlp.patterns[0].regex: set literal or regex, not both`,
				`:5: dlp.patterns[1]: set literal (an exact string) or regex (an RE2 expression)`,
			},
		},
		{
			"literal too short, never echoed",
			withDLP("  patterns:\n    - name: short\n      literal: HERON-7\n", ""),
			[]string{`:5: dlp.patterns[0].literal: is 7 bytes; a literal needs at least 8, or it matches ordinary text`},
		},
		{
			"regex does not compile",
			withDLP("  patterns:\n    - {name: broken, regex: 'corp_('}\n", ""),
			[]string{":4: dlp.patterns[0].regex: is not an RE2 expression (Go's regexp syntax): missing closing ): `corp_(`"},
		},
		{
			"regex with a Perl-only construct",
			withDLP("  patterns:\n    - {name: lookahead, regex: 'corp_(?=x)'}\n", ""),
			[]string{":4: dlp.patterns[0].regex: is not an RE2 expression (Go's regexp syntax): invalid or unsupported Perl syntax: `(?=`"},
		},
		{
			"regex matching the empty string",
			withDLP("  patterns:\n    - {name: everything, regex: 'x*'}\n    - {name: optional, regex: '(corp_[a-z]{8})?'}\n", ""),
			[]string{
				`:4: dlp.patterns[0].regex: matches the empty string, so it would find something in every body; make it match at least one character`,
				`:5: dlp.patterns[1].regex: matches the empty string, so it would find something in every body; make it match at least one character`,
			},
		},
		{
			"pattern names missing, misspelt and repeated",
			withDLP("  patterns:\n    - {literal: BLUEHERON-7731}\n    - {name: Corp_Token, regex: 'corp_[a-z]+'}\n"+
				"    - {name: canary, literal: CANARY-000001}\n    - {name: canary, literal: CANARY-000002}\n", ""),
			[]string{
				`:4: dlp.patterns[0].name: required`,
				`:5: dlp.patterns[1].name: "Corp_Token" may hold only a-z, 0-9 and -`,
				`:7: dlp.patterns[3].name: canary is already the name of dlp.patterns[2]; give each pattern its own name`,
			},
		},
		{
			"pattern key unknown",
			withDLP("  patterns:\n    - {name: a, glob: 'corp_*'}\n", ""),
			[]string{
				`:4: dlp.patterns[0]: unknown key "glob"; allowed: name, literal, regex`,
				`:4: dlp.patterns[0]: set literal (an exact string) or regex (an RE2 expression)`,
			},
		},

		// allow
		{
			"allow entries that are not fingerprints, never echoed",
			withDLP("  allow:\n    - 0123456789ab\n    - 0123456789AB\n    - 0123456789a\n    - ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ012345\n    - [x]\n", ""),
			[]string{
				`:5: dlp.allow[1]: must be a fingerprint as refusals show it, 12 lower-case hex digits, never the value itself`,
				`:6: dlp.allow[2]: must be a fingerprint as refusals show it, 12 lower-case hex digits, never the value itself`,
				`:7: dlp.allow[3]: must be a fingerprint as refusals show it, 12 lower-case hex digits, never the value itself`,
				`:8: dlp.allow[4]: want a string, got a list`,
			},
		},

		// routes
		{
			"route values checked like the bottle's",
			routes("    - host: a.test\n      dlp: {mode: audit}\n    - host: b.test\n      dlp:\n        large_body: drop\n        max_body_bytes: 0\n"),
			[]string{
				`:5: egress.routes[0].dlp.mode: "audit" is not one of block, log, off`,
				`:8: egress.routes[1].dlp.large_body: "drop" is not one of block, pass`,
				`:9: egress.routes[1].dlp.max_body_bytes: must be from 1 to 67108864 (64 MiB), not 0`,
			},
		},
		{
			"patterns and allow are bottle level only",
			routes("    - host: a.test\n      dlp:\n        patterns: []\n        allow: []\n"),
			[]string{
				`:6: egress.routes[0].dlp: unknown key "patterns"; allowed: mode, large_body, max_body_bytes`,
				`:7: egress.routes[0].dlp: unknown key "allow"; allowed: mode, large_body, max_body_bytes`,
			},
		},
		{
			"passthrough route asking for a scan",
			routes("    - host: a.test\n      tls: passthrough\n      dlp: {mode: block}\n    - host: b.test\n      tls: passthrough\n      dlp:\n" +
				"        mode: log\n        large_body: pass\n        max_body_bytes: 1024\n"),
			[]string{
				`:6: egress.routes[0].dlp.mode: tls: passthrough routes cannot be inspected; Envoy sees only the tunnel's encrypted bytes, so set mode: off or leave dlp out, or intercept the host to scan it`,
				`:10: egress.routes[1].dlp.mode: tls: passthrough routes cannot be inspected; Envoy sees only the tunnel's encrypted bytes, so set mode: off or leave dlp out, or intercept the host to scan it`,
				`:11: egress.routes[1].dlp.large_body: tls: passthrough routes cannot be inspected; Envoy sees only the tunnel's encrypted bytes: there is no body to decide for; leave large_body out`,
				`:12: egress.routes[1].dlp.max_body_bytes: tls: passthrough routes cannot be inspected; Envoy sees only the tunnel's encrypted bytes: there is no body to buffer; leave max_body_bytes out`,
			},
		},
		{
			"passthrough route with an invalid mode is reported once",
			routes("    - host: a.test\n      tls: passthrough\n      dlp: {mode: scan}\n"),
			[]string{`:6: egress.routes[0].dlp.mode: "scan" is not one of block, log, off`},
		},
		{
			"every dlp error in one run, in line order",
			withDLP("  mode: on\n  patterns:\n    - {name: x, literal: short}\n  allow: [nope]\n",
				"    - host: a.test\n      tls: passthrough\n      dlp: {mode: log}\n"),
			[]string{
				`:3: dlp.mode: "on" is not one of block, log, off`,
				`:5: dlp.patterns[0].literal: is 5 bytes; a literal needs at least 8, or it matches ordinary text`,
				`:6: dlp.allow[0]: must be a fingerprint as refusals show it, 12 lower-case hex digits, never the value itself`,
				`:11: egress.routes[0].dlp.mode: tls: passthrough routes cannot be inspected; Envoy sees only the tunnel's encrypted bytes, so set mode: off or leave dlp out, or intercept the host to scan it`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := newHost(tt.text).loadErrors(t)
			require.Equal(t, withFile(tt.want), got)
			for _, never := range []string{"HERON", "CANARY-", "ghp_", "0123456789AB"} {
				require.NotContains(t, strings.Join(got, "\n"), never, "a literal or a would-be fingerprint is never echoed")
			}
		})
	}
}

// TestDLPResolved checks each route's DLP: the bottle's setting with the
// route's overrides applied, the defaults without a dlp block, template
// routes like any other, and passthrough routes always off.
func TestDLPResolved(t *testing.T) {
	const codex = "name: demo\nagent_provider: {template: codex}\n"
	logPass1M := DLP{Mode: DLPLog, LargeBody: LargeBodyPass, MaxBody: 1 << 20}
	off := DLP{Mode: DLPOff}
	tests := []struct {
		name  string
		text  string
		want  map[string]DLP // by host
		rules DLPRules
	}{
		{
			name: "no dlp: block everything intercepted, passthrough off",
			text: codex + "egress:\n  routes:\n    - host: api.github.com\n    - host: pypi.org\n      tls: passthrough\n",
			want: map[string]DLP{"api.github.com": blockDLP, "chatgpt.com": blockDLP, "auth.openai.com": blockDLP, "pypi.org": off},
		},
		{
			name: "empty dlp block is the defaults",
			text: "name: demo\ndlp:\negress:\n  routes:\n    - host: a.test\n",
			want: map[string]DLP{"a.test": blockDLP},
		},
		{
			name: "claude template route gets the bottle's",
			text: "name: demo\nagent_provider: {template: claude}\ndlp: {mode: log, large_body: pass, max_body_bytes: 1048576}\n",
			want: map[string]DLP{"api.anthropic.com": logPass1M},
		},
		{
			name: "bottle setting, route overrides merged key by key",
			text: codex + "dlp:\n  mode: log\n  large_body: pass\n  max_body_bytes: 1048576\negress:\n  routes:\n" +
				"    - host: a.test\n    - host: b.test\n      dlp: {mode: block}\n" +
				"    - host: c.test\n      dlp: {max_body_bytes: 4096}\n    - host: d.test\n      dlp: {mode: off}\n" +
				"    - host: e.test\n      dlp: {large_body: block, max_body_bytes: 67108864}\n    - host: f.test\n      dlp:\n" +
				"    - host: pypi.org\n      tls: passthrough\n    - host: files.pythonhosted.org\n      tls: passthrough\n      dlp: {mode: off}\n",
			want: map[string]DLP{
				"chatgpt.com":            logPass1M,
				"auth.openai.com":        logPass1M,
				"a.test":                 logPass1M,
				"b.test":                 {Mode: DLPBlock, LargeBody: LargeBodyPass, MaxBody: 1 << 20},
				"c.test":                 {Mode: DLPLog, LargeBody: LargeBodyPass, MaxBody: 4096},
				"d.test":                 {Mode: DLPOff, LargeBody: LargeBodyPass, MaxBody: 1 << 20},
				"e.test":                 {Mode: DLPLog, LargeBody: LargeBodyBlock, MaxBody: 64 << 20},
				"f.test":                 logPass1M,
				"pypi.org":               off,
				"files.pythonhosted.org": off,
			},
		},
		{
			name: "a manifest route merged into a template route overrides it",
			text: codex + "egress:\n  routes:\n    - host: chatgpt.com\n      dlp: {mode: log}\n",
			want: map[string]DLP{
				"chatgpt.com":     {Mode: DLPLog, LargeBody: LargeBodyBlock, MaxBody: 8 << 20},
				"auth.openai.com": blockDLP,
			},
		},
		{
			name: "bottle off: nothing scanned unless a route asks",
			text: withDLP("  mode: off\n", "    - host: a.test\n    - host: b.test\n      dlp: {mode: block}\n"),
			want: map[string]DLP{
				"a.test": {Mode: DLPOff, LargeBody: LargeBodyBlock, MaxBody: 8 << 20},
				"b.test": blockDLP,
			},
		},
		{
			name: "rules: patterns in order, allow without repeats",
			text: withDLP("  patterns:\n    - {name: corp-token, regex: 'corp_[A-Za-z0-9]{32}'}\n    - {name: project-codename, literal: 'BLUEHERON-7731'}\n"+
				"  allow: ['0123456789ab', 'ba9876543210', '0123456789ab']\n", "    - host: a.test\n"),
			want: map[string]DLP{"a.test": blockDLP},
			rules: DLPRules{
				Patterns: []DLPPattern{
					{Name: "corp-token", Regex: "corp_[A-Za-z0-9]{32}"},
					{Name: "project-codename", Literal: "BLUEHERON-7731"},
				},
				Allow: []string{"0123456789ab", "ba9876543210"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newHost(tt.text).mustLoad(t)
			got := map[string]DLP{}
			for _, r := range p.Routes {
				got[r.Host] = r.DLP
			}
			require.Equal(t, tt.want, got)
			require.Equal(t, tt.rules, p.DLPRules)
		})
	}
}
