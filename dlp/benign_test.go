package dlp_test

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// benign are look-alikes the scanner must not report: each is close to a
// rule (a prefix, a length, an encoding) without being a credential.
func benign(t testing.TB) []attempt {
	g := newGen(3)
	_, pub := privateKeyPEM(t)
	var uuids, shas, sha256s strings.Builder
	for i := range 20 {
		r := g.Bytes(16)
		fmt.Fprintf(&uuids, "%x-%x-%x-%x-%x\n", r[:4], r[4:6], r[6:8], r[8:10], r[10:])
		fmt.Fprintf(&shas, "%x commit %d\n", sha1.Sum(r), i)
		fmt.Fprintf(&sha256s, "sha256:%x\n", sha256.Sum256(r))
	}
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for i := range 16 {
		img.Set(i, i, color.RGBA{R: 255, A: 255})
	}
	var pngBuf bytes.Buffer
	require.NoError(t, png.Encode(&pngBuf, img))
	lorem := strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. ", 20)
	// A token of the right shape whose last checksum digit is changed.
	badGH := g.GitHubToken("ghp_")
	wrong := "A"
	if strings.HasSuffix(badGH, wrong) {
		wrong = "B"
	}
	badGH = badGH[:len(badGH)-1] + wrong
	return []attempt{
		{name: "uuids", body: []byte(uuids.String())},
		{name: "git sha-1 log", body: []byte(shas.String())},
		{name: "sha-256 digests", body: []byte(sha256s.String())},
		{name: "png data uri", body: []byte(`{"image_url":"data:image/png;base64,` + base64.StdEncoding.EncodeToString(pngBuf.Bytes()) + `"}`)},
		{name: "minified js", body: []byte(`!function(e,t){"use strict";var n=e.task-1,r=t.risk-free;function o(i){return i.map(function(s){return s.sk-s.ask-0})}e.AKIAxyz=o}(window,document);`)},
		{name: "random base64 data", body: []byte(base64.StdEncoding.EncodeToString(g.Bytes(3000)))},
		{name: "random base64url data", body: []byte(base64.RawURLEncoding.EncodeToString(g.Bytes(3000)))},
		{name: "sk- in prose", body: []byte("Use sk-learn or a risk-free task-sk- pipeline; keys look like sk-... or sk-proj-XXXX.")},
		{name: "akia wrong length", body: []byte("The prefix AKIA1234 is too short and AKIAABCDEFGHIJKLMNOPQRSTUV is too long; MAKIAGEABCDEFGHIJKLMNO is a word.")},
		{name: "aws documentation example", body: []byte("aws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n")},
		{name: "jwt with alg none", body: []byte("Authorization: Bearer " + g.JWT("none"))},
		{name: "base64 json that is not a jwt", body: []byte("eyJhIjoxfQ and eyJhbGciOiJIUzI1NiJ9.e30")},
		{name: "lorem ipsum", body: []byte(lorem)},
		{name: "long hex", body: []byte(hex.EncodeToString(g.Bytes(2048)))},
		{name: "github token with a wrong checksum", body: []byte("token " + badGH)},
		{name: "token prefixes in docs", body: []byte("GitHub tokens start ghp_, gho_ or github_pat_; Slack's xoxb- and xoxp-; Anthropic's sk-ant-api03-...; webhooks are https://hooks.slack.com/services/...")},
		{name: "private key header without body", body: []byte("Paste the key:\n-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----\n")},
		{name: "public key pem", body: []byte(pub)},
		{name: "codex-like request with code", body: []byte(`{"model":"gpt-5","instructions":"You are a coding agent.","input":[{"role":"user","content":"func main() {\n\tfmt.Println(\"hello\")\n\tx := map[string]int{\"a\": 1}\n}\n"}],"tools":[{"type":"function","name":"shell"}]}`)},
		{name: "urlencoded form", body: []byte("q=" + strings.Repeat("how+to+write+a+go+test%3F+", 10) + "&lang=en%2DUS")},
		{name: "base64 of a kubernetes config", body: []byte(base64.StdEncoding.EncodeToString([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  LOG_LEVEL: debug\n  REGION: eu-west-1\n")))},
		{name: "gzip lorem", body: gzipped(t, []byte(lorem)), contentEncoding: "gzip"},
		{name: "br json", body: brotlied(t, []byte(`{"messages":[{"role":"user","content":"refactor the parser"}]}`)), contentEncoding: "br"},
		{name: "slack-like ids", body: []byte("xoxb-123-456 is not complete; xoxp-1-2-3-00000000000000000000000")},
		{name: "versions and dotted names", body: []byte("eyJ.config.js v1.2.3 sk-1.0.0 AKIA.txt")},
	}
}

func TestCorpusBenignIsNotReported(t *testing.T) {
	f := newFixture(t)
	cases := benign(t)
	require.GreaterOrEqual(t, len(cases), 20)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := f.s.ScanEncoded(c.body, c.contentEncoding)
			require.NoError(t, err)
			if len(got) > 0 {
				t.Errorf("false positive: %s", describe(got))
			}
		})
	}
}
