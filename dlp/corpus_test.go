package dlp_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/dlp"
	"github.com/stretchr/testify/require"
)

// fixture is a scanner configured as the egress would be: ten known secrets
// (slot values), two canaries and two extra patterns.
type fixture struct {
	known    []string
	canaries []string
	literal  string
	s        *dlp.Scanner
}

func newFixture(t testing.TB) *fixture {
	g := newGen(1)
	f := &fixture{literal: "internal-codename-" + g.Chars(12, lower)}
	cfg := dlp.Config{Patterns: []dlp.Pattern{
		{Name: "codename", Literal: f.literal, Severity: dlp.SeverityLow},
		{Name: "egress-token", Regex: `EGT-[0-9a-f]{32}`},
	}}
	for i := range 10 {
		// '/', '+' and '=' make the URL and JSON forms differ from the plain one.
		v := g.MixedChars(44, b64std) + "/+="
		f.known = append(f.known, v)
		cfg.KnownSecrets = append(cfg.KnownSecrets, dlp.Named{Name: fmt.Sprintf("EGRESS_TOKEN_%d", i), Value: config.NewSecret(v)})
	}
	// Canaries shaped like real tokens, as planted ones would be.
	f.canaries = []string{g.GitHubToken("ghp_"), g.OpenAIProject()}
	cfg.Canaries = []dlp.Named{
		{Name: "canary-github", Value: config.NewSecret(f.canaries[0])},
		{Name: "canary-openai", Value: config.NewSecret(f.canaries[1])},
	}
	s, err := dlp.New(cfg)
	require.NoError(t, err)
	f.s = s
	return f
}

// attempt is one exfiltration the scanner must catch.
type attempt struct {
	name            string
	body            []byte
	contentEncoding string
	kind            string // a finding of this kind must be reported
	encoding        string // and, when set, with this encoding
}

func b64(s string) string    { return base64.StdEncoding.EncodeToString([]byte(s)) }
func b64url(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func escapeAllJSON(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		fmt.Fprintf(&b, `\u%04x`, c)
	}
	return b.String()
}

func escapeAllPercent(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

func attempts(t testing.TB, f *fixture) []attempt {
	g := newGen(2)
	priv, _ := privateKeyPEM(t)
	keyID, secret := g.AWSKeyID("AKIA"), g.AWSSecret()
	gh := g.GitHubToken("ghp_")
	oa := g.OpenAILegacy()
	an := g.Anthropic()
	hook := g.SlackWebhook()
	jwt := g.JWT("HS256")
	known := f.known[3]
	chat := func(content string) []byte {
		return []byte(`{"model":"gpt-5","input":[{"role":"user","content":` + jsonString(content) + `}],"stream":true}`)
	}
	a := []attempt{
		// Each format, plain, in the places an agent would put it.
		{name: "aws key id in env line", body: []byte("AWS_ACCESS_KEY_ID=" + keyID + "\n"), kind: dlp.KindAWSAccessKeyID, encoding: "plain"},
		{name: "aws credentials file", body: []byte("[default]\naws_access_key_id = " + keyID + "\naws_secret_access_key = " + secret + "\n"), kind: dlp.KindAWSSecretKey, encoding: "plain"},
		{name: "aws temporary key id in json", body: []byte(`{"AccessKeyId":"` + g.AWSKeyID("ASIA") + `","Expiration":"2030-01-01"}`), kind: dlp.KindAWSAccessKeyID},
		{name: "aws secret by keyword alone", body: []byte(`{"SecretAccessKey": "` + g.AWSSecret() + `"}`), kind: dlp.KindAWSSecretKey},
		{name: "github ghp in authorization header", body: []byte("Authorization: token " + gh + "\r\n"), kind: dlp.KindGitHubToken, encoding: "plain"},
		{name: "github gho in json", body: chat("my token is " + g.GitHubToken("gho_")), kind: dlp.KindGitHubToken},
		{name: "github ghu in prose", body: []byte("use " + g.GitHubToken("ghu_") + " for the app"), kind: dlp.KindGitHubToken},
		{name: "github ghs in clone url", body: []byte("git clone https://x-access-token:" + g.GitHubToken("ghs_") + "@github.com/o/r.git"), kind: dlp.KindGitHubToken},
		{name: "github ghr in query string", body: []byte("GET /cb?refresh=" + g.GitHubToken("ghr_") + "&x=1"), kind: dlp.KindGitHubToken},
		{name: "github fine-grained pat", body: []byte("GITHUB_TOKEN=" + g.GitHubPAT()), kind: dlp.KindGitHubToken},
		{name: "openai legacy key in json", body: chat("OPENAI_API_KEY=" + oa), kind: dlp.KindOpenAIKey},
		{name: "openai project key in header", body: []byte("Authorization: Bearer " + g.OpenAIProject()), kind: dlp.KindOpenAIKey},
		{name: "anthropic key in header", body: []byte("x-api-key: " + an + "\n"), kind: dlp.KindAnthropicKey, encoding: "plain"},
		{name: "slack bot token in form", body: []byte("token=" + g.SlackBot() + "&channel=C1"), kind: dlp.KindSlackToken},
		{name: "slack user token in json", body: []byte(`{"t":"` + g.SlackUser() + `"}`), kind: dlp.KindSlackToken},
		{name: "slack webhook in json", body: chat("post to " + hook), kind: dlp.KindSlackWebhook},
		{name: "private key in json", body: chat(priv), kind: dlp.KindPrivateKey},
		{name: "private key raw in multipart", body: []byte("--b\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n" + priv + "\r\n--b--\r\n"), kind: dlp.KindPrivateKey, encoding: "plain"},
		{name: "jwt in authorization header", body: []byte("Authorization: Bearer " + jwt + "\r\n"), kind: dlp.KindJWT, encoding: "plain"},
		{name: "jwt in query string", body: []byte("/callback?id_token=" + jwt + "&state=x"), kind: dlp.KindJWT},

		// Each encoding of a format token.
		{name: "github token base64 in json", body: []byte(`{"data":"` + b64("token: "+gh+"\n") + `"}`), kind: dlp.KindGitHubToken, encoding: "base64"},
		{name: "github token base64url in query", body: []byte("/u?d=" + b64url(gh)), kind: dlp.KindGitHubToken, encoding: "base64"},
		{name: "openai key base64 alignment 1", body: []byte(b64(" " + oa)), kind: dlp.KindOpenAIKey, encoding: "base64"},
		{name: "openai key base64 alignment 2", body: []byte(b64("K=" + oa)), kind: dlp.KindOpenAIKey, encoding: "base64"},
		{name: "aws key id every byte percent-encoded", body: []byte("q=" + escapeAllPercent(keyID)), kind: dlp.KindAWSAccessKeyID, encoding: "url"},
		{name: "slack webhook query-escaped in form", body: []byte("payload=x&url=" + url.QueryEscape(hook)), kind: dlp.KindSlackWebhook, encoding: "url"},
		{name: "anthropic key every char json-escaped", body: []byte(`{"k":"` + escapeAllJSON(an) + `"}`), kind: dlp.KindAnthropicKey, encoding: "json"},
		{name: "private key base64 as in a kubernetes secret", body: []byte("data:\n  tls.key: " + b64(priv) + "\n"), kind: dlp.KindPrivateKey, encoding: "base64"},
		{name: "jwt json-escaped slash", body: []byte(`{"u":"https:\/\/x\/?t=` + jwt + `"}`), kind: dlp.KindJWT},
		{name: "github token base64 then query-escaped", body: []byte("d=" + url.QueryEscape(b64("??>"+gh+"??>"))), kind: dlp.KindGitHubToken, encoding: "url+base64"},
		{name: "github token gzip json", body: gzipped(t, chat("here: "+gh)), contentEncoding: "gzip", kind: dlp.KindGitHubToken, encoding: "gzip"},
		{name: "openai key br", body: brotlied(t, chat(oa)), contentEncoding: "br", kind: dlp.KindOpenAIKey, encoding: "br"},
		{name: "anthropic key deflate", body: zlibbed(t, []byte("key="+an)), contentEncoding: "deflate", kind: dlp.KindAnthropicKey, encoding: "deflate"},
		{name: "aws key gzip then base64", body: gzipped(t, []byte(`{"blob":"`+b64("id="+keyID)+`"}`)), contentEncoding: "gzip", kind: dlp.KindAWSAccessKeyID, encoding: "gzip+base64"},

		// Known secrets, canaries and extra patterns.
		{name: "known secret plain in json", body: chat("the token is " + known), kind: dlp.KindKnownSecret, encoding: "plain"},
		{name: "known secret in header line", body: []byte("X-Leak: " + known + "\r\n"), kind: dlp.KindKnownSecret, encoding: "plain"},
		{name: "known secret base64 alignment 0", body: []byte(b64(known + "|tail")), kind: dlp.KindKnownSecret, encoding: "base64"},
		{name: "known secret base64 alignment 1", body: []byte(b64("a" + known + "|tail")), kind: dlp.KindKnownSecret, encoding: "base64"},
		{name: "known secret base64 alignment 2", body: []byte(b64("ab" + known + "|tail")), kind: dlp.KindKnownSecret, encoding: "base64"},
		{name: "known secret base64url glued to other text", body: []byte("zzzz" + b64url("token="+f.known[7])), kind: dlp.KindKnownSecret, encoding: "base64"},
		{name: "known secret query-escaped", body: []byte("a=1&t=" + url.QueryEscape(f.known[1])), kind: dlp.KindKnownSecret, encoding: "url"},
		{name: "known secret lower-case percent", body: []byte(strings.ToLower(escapeAllPercent(f.known[2]))), kind: dlp.KindKnownSecret, encoding: "url"},
		{name: "known secret json slash-escaped", body: []byte(`{"v":"` + strings.ReplaceAll(f.known[4], "/", `\/`) + `"}`), kind: dlp.KindKnownSecret, encoding: "json"},
		{name: "known secret gzip", body: gzipped(t, chat(f.known[9])), contentEncoding: "gzip", kind: dlp.KindKnownSecret, encoding: "gzip"},
		{name: "canary in header line", body: []byte("Authorization: token " + f.canaries[0] + "\r\n"), kind: dlp.KindCanary, encoding: "plain"},
		{name: "canary base64", body: []byte(`{"x":"` + b64("k="+f.canaries[1]) + `"}`), kind: dlp.KindCanary, encoding: "base64"},
		{name: "canary br", body: brotlied(t, chat(f.canaries[1])), contentEncoding: "br", kind: dlp.KindCanary, encoding: "br"},
		{name: "extra literal", body: []byte("project " + f.literal + " launch"), kind: dlp.KindPattern},
		{name: "extra regex", body: []byte("EGT-" + g.Chars(32, "0123456789abcdef")), kind: dlp.KindPattern},

		// Tokens in binary data, as in an image's metadata.
		{name: "github token in base64 binary", body: []byte(`{"image":"` + b64(string(g.Bytes(3000))+"token="+g.GitHubToken("ghp_")+string(g.Bytes(3000))) + `"}`), kind: dlp.KindGitHubToken, encoding: "base64"},
		{name: "aws key id in base64 binary", body: []byte(b64(string(g.Bytes(100)) + g.AWSKeyID("AKIA") + string(g.Bytes(100)))), kind: dlp.KindAWSAccessKeyID, encoding: "base64"},
	}
	return a
}

func describe(fs []dlp.Finding) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = f.String()
	}
	return "[" + strings.Join(s, "; ") + "]"
}

// found reports whether fs holds a finding of kind (with encoding, if set).
func found(fs []dlp.Finding, kind, encoding string) bool {
	for _, f := range fs {
		if f.Kind == kind && (encoding == "" || f.Encoding == encoding) {
			return true
		}
	}
	return false
}

func TestCorpusAttemptsAreDetected(t *testing.T) {
	f := newFixture(t)
	cases := attempts(t, f)
	require.GreaterOrEqual(t, len(cases), 40)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { requireDetected(t, f.s, c) })
	}
}

// requireDetected scans c whole and as a stream in 7-byte chunks, and
// requires c's finding from both.
func requireDetected(t *testing.T, s *dlp.Scanner, c attempt) {
	got, err := s.ScanEncoded(c.body, c.contentEncoding)
	require.NoError(t, err)
	if !found(got, c.kind, c.encoding) {
		t.Errorf("want %s (encoding %q), got %s", c.kind, c.encoding, describe(got))
	}
	st, err := s.NewEncodedStream(c.contentEncoding)
	require.NoError(t, err)
	for b := c.body; len(b) > 0; b = b[min(7, len(b)):] {
		_, err := st.Write(b[:min(7, len(b))])
		require.NoError(t, err)
	}
	streamed, err := st.Close()
	require.NoError(t, err)
	if !found(streamed, c.kind, c.encoding) {
		t.Errorf("streamed: want %s (encoding %q), got %s", c.kind, c.encoding, describe(streamed))
	}
}
