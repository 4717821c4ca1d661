package integration

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/audit"
	"github.com/egressgate/egressgate/internal/tokengen"
)

// dlpToken is the host credential of the DLP bottle's injected route: a
// known secret, which may leave only in that route's Authorization.
const dlpToken = "itest-dlp-host-token-5c1e9a77b2"

var dlpHosts = []string{"api.example.test", "logs.example.test", "small.example.test", "tail.example.test"}

// dlpManifest: the bottle default (block, 8 MiB), a log-mode host, and two
// hosts with a 64 KiB limit, one blocking longer bodies, one passing them.
func dlpManifest(up *upstream, pki *upstreamPKI) string {
	upstream := fmt.Sprintf("{address: %q, ca_file: %q}", up.addr(), pki.caPath)
	return fmt.Sprintf(`name: itest
agent_provider: {template: none}
dlp:
  patterns: [{name: codename, literal: BLUEHERON-7731}]
egress:
  routes:
    - host: api.example.test
      auth: {scheme: Bearer, token_ref: ITEST_DLP_TOKEN}
      upstream: %[1]s
    - host: logs.example.test
      dlp: {mode: log}
      upstream: %[1]s
    - host: small.example.test
      dlp: {max_body_bytes: 65536}
      upstream: %[1]s
    - host: tail.example.test
      dlp: {max_body_bytes: 65536, large_body: pass}
      upstream: %[1]s
`, upstream)
}

func TestDLP(t *testing.T) {
	pki := newUpstreamPKI(t, dlpHosts...)
	up := newUpstream(t, pki)
	b := startBottle(t, bottleOptions{manifest: dlpManifest(up, pki), env: []string{"ITEST_DLP_TOKEN=" + dlpToken}})
	gh := "ghp_Zx8aQ2mN4pR6sT0uV1wY3bC5dE7fG9" + tokengen.Base62Checksum("Zx8aQ2mN4pR6sT0uV1wY3bC5dE7fG9")
	since := time.Now()

	do := func(t *testing.T, h2 bool, req *http.Request) (int, string) {
		t.Helper()
		resp, err := b.agent(t, h2).Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		return resp.StatusCode, readAll(t, resp.Body)
	}
	post := func(host, path string, body []byte, header ...string) *http.Request {
		req, err := http.NewRequest(http.MethodPost, "https://"+host+path, bytes.NewReader(body))
		if err != nil {
			panic(err)
		}
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		return req
	}
	// refused asserts a DLP refusal that names what and where and holds
	// none of the secrets, and that the upstream never saw the path.
	refused := func(t *testing.T, status int, body, path string, want ...string) {
		t.Helper()
		assert.Equal(t, http.StatusForbidden, status, body)
		for _, w := range want {
			assert.Contains(t, body, w)
		}
		for _, s := range []string{dlpToken, gh, "BLUEHERON-7731"} {
			assert.NotContains(t, body, s)
		}
		assert.False(t, containsPath(up.requests(), path), "the upstream got a refused request")
	}

	for _, h2 := range []bool{false, true} {
		proto := map[bool]string{false: "h1", true: "h2"}[h2]
		t.Run("clean 64 KiB turn passes whole over "+proto, func(t *testing.T) {
			body := tokengen.CodexTurnBody(64<<10, "refactor the parser")
			status, text := do(t, h2, post("api.example.test", "/clean-"+proto, body, "Authorization", "Bearer agent-placeholder"))
			require.Equal(t, http.StatusOK, status, text)
			got := lastRequestTo(t, up, "/clean-"+proto)
			assert.Equal(t, sha256.Sum256(body), got.Body)
			assert.Equal(t, "Bearer "+dlpToken, got.Header.Get("Authorization"))
			if !h2 {
				assert.Equal(t, fmt.Sprint(len(body)), got.Header.Get("Content-Length"), "the agent's framing is kept")
			}
		})
		t.Run("host credential in the body refused over "+proto, func(t *testing.T) {
			status, text := do(t, h2, post("api.example.test", "/known-"+proto, tokengen.CodexTurnBody(64<<10, "the token is "+dlpToken)))
			refused(t, status, text, "/known-"+proto, "known-secret", "EGRESS_TOKEN_0", "body")
		})
		t.Run("github token refused with its fingerprint over "+proto, func(t *testing.T) {
			status, text := do(t, h2, post("small.example.test", "/gh-"+proto, []byte(`{"comment":"`+gh+`"}`)))
			refused(t, status, text, "/gh-"+proto, "github-token", "dlp.allow")
			assert.Regexp(t, regexp.MustCompile(`fingerprint [0-9a-f]{12}`), text)
		})
	}

	t.Run("gzip body", func(t *testing.T) {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		_, _ = zw.Write(tokengen.CodexTurnBody(32<<10, "codename BLUEHERON-7731"))
		require.NoError(t, zw.Close())
		status, text := do(t, false, post("api.example.test", "/gzip", z.Bytes(), "Content-Encoding", "gzip"))
		refused(t, status, text, "/gzip", "pattern codename")
	})
	t.Run("base64 in a chunked upload split across writes", func(t *testing.T) {
		enc := []byte(`{"blob":"` + strings.TrimRight(b64(dlpToken), "=") + `"}`)
		pr, pw := io.Pipe()
		go func() {
			for i := 0; i < len(enc); i += 5 {
				_, _ = pw.Write(enc[i:min(i+5, len(enc))])
			}
			_ = pw.Close()
		}()
		req := post("api.example.test", "/chunked", nil)
		req.Body, req.ContentLength = pr, -1
		status, text := do(t, false, req)
		refused(t, status, text, "/chunked", "known-secret")
	})
	t.Run("path and headers", func(t *testing.T) {
		status, text := do(t, false, post("api.example.test", "/q?note="+url.QueryEscape("BLUEHERON-7731"), nil))
		refused(t, status, text, "/q", "its path carries", "codename")
		status, text = do(t, false, post("api.example.test", "/hdr", nil, "X-Note", "k="+gh))
		refused(t, status, text, "/hdr", "its header carries", "github-token")
		// The agent's own Authorization is replaced, never sent: no leak.
		status, text = do(t, false, post("api.example.test", "/authz", []byte("{}"), "Authorization", "Bearer "+gh))
		assert.Equal(t, http.StatusOK, status, text)
	})
	t.Run("log mode forwards formats", func(t *testing.T) {
		status, text := do(t, false, post("logs.example.test", "/logged", []byte(`{"comment":"`+gh+`"}`)))
		assert.Equal(t, http.StatusOK, status, text)
		r := recordFor(t, b.stateDir, "the logged detection", func(r audit.Record) bool { return r.Path == "/logged" && !r.Time.Before(since.Truncate(time.Second)) })
		require.Len(t, r.DLP, 1)
		assert.Equal(t, audit.Detection{Where: "body", Kind: "github-token", Fingerprint: r.DLP[0].Fingerprint, Action: "log"}, r.DLP[0])
		// A host credential is refused even in log mode.
		status, text = do(t, false, post("logs.example.test", "/logged-known", []byte(dlpToken)))
		refused(t, status, text, "/logged-known", "known-secret")
	})
	t.Run("large bodies", func(t *testing.T) {
		big := tokengen.CodexTurnBody(200<<10, "nothing secret")
		status, text := do(t, false, post("small.example.test", "/big", big))
		refused(t, status, text, "/big", "longer than the 65536 bytes")
		status, text = do(t, true, post("tail.example.test", "/big-pass", big))
		require.Equal(t, http.StatusOK, status, text)
		assert.Equal(t, sha256.Sum256(big), lastRequestTo(t, up, "/big-pass").Body)
		r := recordFor(t, b.stateDir, "the unscanned tail", pathIs("/big-pass"))
		assert.True(t, r.DLPUnscannedTail)
		// A body past the default 8 MiB Envoy would refuse by itself is
		// still scanned whole up to there.
		status, text = do(t, false, post("api.example.test", "/two-mib", append(tokengen.CodexTurnBody(2<<20, "x"), []byte(dlpToken)...)))
		refused(t, status, text, "/two-mib", "known-secret")
	})
	t.Run("websocket frames", func(t *testing.T) {
		proxyURL, err := url.Parse("http://" + b.proxy)
		require.NoError(t, err)
		dialer := websocket.Dialer{Proxy: http.ProxyURL(proxyURL), TLSClientConfig: b.agent(t, false).Transport.(*http.Transport).TLSClientConfig,
			HandshakeTimeout: 10 * time.Second, EnableCompression: true}
		conn, resp, err := dialer.Dial("wss://api.example.test/ws", nil)
		require.NoError(t, err)
		defer conn.Close()
		assert.Empty(t, resp.Header.Get("Sec-Websocket-Extensions"), "no compression agreed on a scanned route")
		require.NoError(t, conn.WriteMessage(websocket.TextMessage, []byte("hello")))
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
		_, got, err := conn.ReadMessage()
		require.NoError(t, err)
		assert.Equal(t, "echo: hello", string(got))
		require.NoError(t, conn.WriteMessage(websocket.TextMessage, []byte("psst "+gh)))
		_, got, err = conn.ReadMessage()
		assert.Error(t, err, "the connection is cut, no echo: %q", got)
		r := recordFor(t, b.stateDir, "the websocket detection", pathIs("/ws"))
		require.Len(t, r.DLP, 1)
		assert.Equal(t, "websocket", r.DLP[0].Where)
	})
	t.Run("audit and metrics carry kinds and fingerprints only", func(t *testing.T) {
		r := recordFor(t, b.stateDir, "the refused gzip body", pathIs("/gzip"))
		assert.Equal(t, audit.Refused, r.Decision)
		assert.Equal(t, "dlp_secret", r.Reason)
		require.Len(t, r.DLP, 1)
		assert.Equal(t, "pattern", r.DLP[0].Kind)
		assert.Equal(t, "codename", r.DLP[0].Name)
		trail := readFile(t, b.stateDir+"/"+audit.FileName)
		logs := b.stdout.String() + b.stderr.String() + readFile(t, b.envoyLog())
		for _, s := range []string{dlpToken, gh, "BLUEHERON-7731", b64(dlpToken)} {
			assert.NotContains(t, trail, s)
			assert.NotContains(t, logs, s)
		}
		eventually(t, propagation, "the detections metric", func() bool {
			return strings.Contains(httpGet(t, "http://"+b.admin+"/metrics"),
				`egressgate_dlp_detections_total{action="block",bottle="itest",host="api.example.test",kind="pattern",where="body"} 1`)
		})
	})
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
