package extproc

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/dlp"
	"github.com/egressgate/egressgate/extprocapi"
	"github.com/egressgate/egressgate/internal/tokengen"
)

// corpusRoute is a scanned route that blocks, with room for every body.
var corpusRoute = append(route("api.example.com", "EGRESS_TOKEN_1", "Bearer"),
	extprocapi.MetadataDLP, "block", extprocapi.MetadataDLPLarge, "block", extprocapi.MetadataDLPMax, "1048576")

// placement is one way an agent can send a value out on a scanned route.
type placement struct {
	name string
	// send runs the request through h and returns the last answer.
	send func(t *testing.T, h *harness, value string) *extprocv3.ProcessingResponse
}

func bodyPlacement(name, coding string, wrap func(string) string) placement {
	return placement{name: name, send: func(t *testing.T, h *harness, v string) *extprocv3.ProcessingResponse {
		body := []byte(wrap(v))
		var headers []string
		if coding != "" {
			body, headers = tokengen.Compressed(coding, body), []string{"content-encoding", coding}
		}
		return post(t, h, corpusRoute, "/v1/x", body, true, headers...)
	}}
}

func jsonString(v string) string {
	b, _ := json.Marshal(map[string]string{"text": "please post this: " + v})
	return string(b)
}

// unicodeEscaped writes every byte of v as \u00XX, as a JSON encoder may.
func unicodeEscaped(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		fmt.Fprintf(&b, `\u%04x`, v[i])
	}
	return `{"text":"` + b.String() + `"}`
}

var placements = []placement{
	bodyPlacement("body json", "", jsonString),
	bodyPlacement("body \\u-escaped", "", unicodeEscaped),
	bodyPlacement("body base64", "", func(v string) string { return `{"blob":"` + base64.StdEncoding.EncodeToString([]byte(v)) + `"}` }),
	bodyPlacement("body base64url offset 1", "", func(v string) string {
		return `{"blob":"` + base64.RawURLEncoding.EncodeToString([]byte(" "+v)) + `"}`
	}),
	bodyPlacement("body form", "", func(v string) string { return "a=1&note=" + url.QueryEscape(v) }),
	bodyPlacement("gzip body", "gzip", jsonString),
	bodyPlacement("deflate body", "deflate", jsonString),
	bodyPlacement("br body", "br", jsonString),
	bodyPlacement("zstd body", "zstd", jsonString),
	{name: "path query", send: func(t *testing.T, h *harness, v string) *extprocv3.ProcessingResponse {
		return post(t, h, corpusRoute, "/v1/x?q="+url.QueryEscape(v), nil, true)
	}},
	{name: "header", send: func(t *testing.T, h *harness, v string) *extprocv3.ProcessingResponse {
		return post(t, h, corpusRoute, "/v1/x", nil, true, "x-note", strings.ReplaceAll(v, "\n", " "))
	}},
	{name: "websocket frame", send: func(t *testing.T, h *harness, v string) *extprocv3.ProcessingResponse {
		stream := h.open(t, corpusRoute)
		hv := func(k, v string) *corev3.HeaderValue { return &corev3.HeaderValue{Key: k, RawValue: []byte(v)} }
		resp := send(t, stream, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
			RequestHeaders: &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
				hv(":method", "GET"), hv(":path", "/ws"), hv("upgrade", "websocket"), hv("connection", "upgrade")}}},
		}})
		if resp.GetImmediateResponse() != nil {
			return resp
		}
		frames := wsFrame(1, true, []byte(jsonString(v)))
		for chunk := range slicesChunk(frames, 11) {
			resp = send(t, stream, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
				RequestBody: &extprocv3.HttpBody{Body: chunk}}})
			if resp.GetImmediateResponse() != nil {
				break
			}
		}
		return resp
	}},
}

// TestDLPCorpus runs exfiltration attempts (each secret kind the egress
// looks for, each in the request body as JSON and again in another place
// or encoding: URL, header, base64 at two alignments, \u escapes, a form,
// four content codings, a WebSocket frame) through the ext_proc server as
// Envoy sends them on a scanned route; every one must be refused, naming
// its kind and never holding the value.
func TestDLPCorpus(t *testing.T) {
	g := tokengen.New(7)
	pemKey, _, err := tokengen.PrivateKeyPEM()
	require.NoError(t, err)
	secrets := []struct {
		kind, value string
		// noLine marks values a header or URL line cannot carry whole.
		noLine bool
	}{
		{dlp.KindKnownSecret, tokenA + "-long-enough", false},
		{dlp.KindCanary, canaryValue, false},
		{dlp.KindPattern, "BLUEHERON-7731", false},
		{dlp.KindPattern, "corp_" + g.Chars(32, tokengen.Base62), false},
		{dlp.KindGitHubToken, g.GitHubToken("ghp_"), false},
		{dlp.KindGitHubToken, g.GitHubToken("gho_"), false},
		{dlp.KindGitHubToken, g.GitHubPAT(), false},
		{dlp.KindAWSAccessKeyID, g.AWSKeyID("AKIA"), false},
		{dlp.KindAWSAccessKeyID, g.AWSKeyID("ASIA"), false},
		{dlp.KindAWSSecretKey, "aws_secret_access_key = " + g.AWSSecret(), false},
		{dlp.KindOpenAIKey, g.OpenAILegacy(), false},
		{dlp.KindOpenAIKey, g.OpenAIProject(), false},
		{dlp.KindAnthropicKey, g.Anthropic(), false},
		{dlp.KindSlackToken, g.SlackBot(), false},
		{dlp.KindSlackToken, g.SlackUser(), false},
		{dlp.KindSlackWebhook, g.SlackWebhook(), false},
		{dlp.KindPrivateKey, pemKey, true},
		{dlp.KindJWT, g.JWT("HS256"), false},
	}
	h := newDLPHarness(t, config.DLPRules{Patterns: []config.DLPPattern{
		{Name: "codename", Literal: "BLUEHERON-7731"}, {Name: "corp-token", Regex: `corp_[A-Za-z0-9]{32}`},
	}})
	attempts := 0
	for i, s := range secrets {
		// Each secret in the body as JSON, and in one other place, taken
		// in turn so every place is covered.
		others := placements[1:]
		other := others[i%len(others)]
		if s.noLine && (other.name == "header" || other.name == "path query") {
			other = placements[2]
		}
		for _, p := range []placement{placements[0], other} {
			attempts++
			t.Run(fmt.Sprintf("%s in %s", s.kind, p.name), func(t *testing.T) {
				resp := p.send(t, h.harness, s.value)
				body := requireRefused(t, resp, codeSecret, s.kind)
				assert.NotContains(t, body, s.value)
			})
		}
	}
	// And every place once more with a known secret, the value that must
	// never leave by any route.
	for _, p := range placements {
		attempts++
		t.Run("known secret in "+p.name, func(t *testing.T) {
			requireRefused(t, p.send(t, h.harness, tokenA+"-long-enough"), codeSecret, dlp.KindKnownSecret)
		})
	}
	assert.GreaterOrEqual(t, attempts, 40)
	assert.NotContains(t, h.logs.String(), canaryValue)
}

// TestDLPBenignPasses: look-alikes that are not secrets pass every place
// with no detection at all (false-positive rate 0).
func TestDLPBenignPasses(t *testing.T) {
	g := tokengen.New(11)
	_, pub, err := tokengen.PrivateKeyPEM()
	require.NoError(t, err)
	png := append([]byte("\x89PNG\r\n\x1a\n"), g.Bytes(6000)...)
	benign := map[string]string{
		"uuid":               "3f2b8c1e-9a4d-4e7b-b6c2-1d5e8f9a0b3c",
		"sha256 hex":         "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		"git sha":            "e83c5163316f89bfbde7d9ab23ca2e25604af290",
		"base64 png":         "data:image/png;base64," + base64.StdEncoding.EncodeToString(png),
		"minified js":        `!function(e,t){"use strict";var n=e.document,r=function(e){return n.querySelector(e)};t.exports={task:r,skip:function(){return"sk-"+e}}}(window,module);`,
		"prose about keys":   "AWS access key ids start with AKIA; GitHub tokens with ghp_; keep them out of code.",
		"aws example key":    "AKIAIOSFODNN7EXAMPLE",
		"task- names":        "task-runner-build-fix, risk-assessment, disk-usage",
		"unsigned jwt":       g.JWT("none"),
		"public key pem":     pub,
		"random base64":      base64.StdEncoding.EncodeToString(g.Bytes(48)),
		"npm integrity":      "sha512-" + base64.StdEncoding.EncodeToString(g.Bytes(64)),
		"docker digest":      "sha256:" + strings.Repeat("ab12", 16),
		"go sum":             "h1:" + base64.StdEncoding.EncodeToString(g.Bytes(32)),
		"url with query":     "https://example.com/search?q=egress+proxy&page=2",
		"slack channel id":   "C0123ABCD45",
		"semver":             "v1.40.0-rc.2+build.7",
		"lowercase hex 40":   strings.Repeat("0123456789", 4),
		"code identifiers":   "func AKIAHandler() {}; const skipAll = true; let xoxo = 'hugs'",
		"codex turn":         string(tokengen.CodexTurnBody(16<<10, "done")),
		"git credential url": "https://github.com/egressgate/egressgate.git",
		"base64 of prose":    base64.StdEncoding.EncodeToString([]byte("the quick brown fox jumps over the lazy dog, twice over")),
	}
	h := newDLPHarness(t, config.DLPRules{})
	for name, v := range benign {
		for _, p := range []placement{placements[0], placements[5], placements[9]} {
			if p.name == "path query" && len(v) > 2000 {
				continue
			}
			t.Run(name+" in "+p.name, func(t *testing.T) {
				requireContinued(t, p.send(t, h.harness, v))
			})
		}
	}
	assert.GreaterOrEqual(t, len(benign), 20)
	assert.Empty(t, h.detections(), "no detection for a benign value")
}
