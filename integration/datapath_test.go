package integration

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const agentPlaceholder = "Bearer agent-placeholder"

// codexManifest routes every host of the test to the loopback upstream,
// trusting the test's own upstream CA.
func codexManifest(forward bool, up *upstream, pki *upstreamPKI) string {
	route := func(host string) string {
		return fmt.Sprintf("    - host: %s\n      upstream: {address: %q, ca_file: %q}\n", host, up.addr(), pki.caPath)
	}
	return fmt.Sprintf(`---
name: itest
agent_provider:
  template: codex
  forward_host_credentials: %t
egress:
  routes:
%s%s%s      matches:
        - paths: [{type: prefix, value: /allowed/}]
          methods: [GET]
---
# Integration bottle

The body of a Markdown manifest is ignored.
`, forward, route("chatgpt.com"), route("auth.openai.com"), route("api.example.test"))
}

var testHosts = []string{"chatgpt.com", "auth.openai.com", "api.example.test"}

func TestDataPath(t *testing.T) {
	pki := newUpstreamPKI(t, testHosts...)
	up := newUpstream(t, pki)
	login := newHostLogin(t, time.Now().Add(time.Hour))
	b := startBottle(t, bottleOptions{manifest: codexManifest(true, up, pki), codexHome: login.home})

	coreDataPath(t, b.egress, up, login)

	// Runs after every request above: the host token (and the refresh
	// token it came with) must appear in none of egressgate's output nor
	// Envoy's log, even at debug level.
	t.Run("host credentials never logged", func(t *testing.T) {
		logs := b.stdout.String() + b.stderr.String() + readFile(t, b.envoyLog())
		require.Contains(t, logs, "ext_proc request", "debug logs were captured")
		assert.NotContains(t, logs, login.accessToken)
		assert.NotContains(t, logs, "rt-host-refresh-secret")
	})

	// serve's own Envoy reaches its ext_proc server on a Unix socket only
	// this user can open, not on a loopback port anything can dial.
	t.Run("ext_proc on a private unix socket", func(t *testing.T) {
		info, err := os.Stat(filepath.Join(b.stateDir, "extproc.sock"))
		require.NoError(t, err)
		assert.Equal(t, os.ModeSocket|0o600, info.Mode()&(os.ModeType|os.ModePerm))
	})
}

// coreDataPath is the data path every deployment must honour, whatever
// runs the control plane: injection with streaming over both HTTP versions,
// stripping, and the refusals.
func coreDataPath(t *testing.T, b egress, up *upstream, login *hostLogin) {
	for _, h2 := range []bool{false, true} {
		name := map[bool]string{false: "HTTP/1.1", true: "HTTP/2"}[h2]
		t.Run("codex token injected over "+name, func(t *testing.T) {
			path := "/backend-api/codex/responses"
			req, err := http.NewRequest(http.MethodPost, "https://chatgpt.com"+path, strings.NewReader(`{"model":"gpt-5-codex"}`))
			require.NoError(t, err)
			req.Header.Set("Authorization", agentPlaceholder)
			req.Header.Set("Accept", "text/event-stream")
			before := len(up.requests())

			resp, err := b.agent(t, h2).Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, map[bool]int{false: 1, true: 2}[h2], resp.ProtoMajor, "agent-side protocol")
			assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
			assertSSE(t, resp)

			seen := up.requests()[before:]
			require.Len(t, seen, 1)
			got := seen[0]
			assert.Equal(t, path, got.Path)
			assert.Equal(t, []string{"Bearer " + login.accessToken}, got.Header.Values("Authorization"),
				"the upstream must see the host token exactly once")
			assertNoValueContains(t, got.Header, "agent-placeholder")
		})
	}

	t.Run("route without auth strips agent credentials", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodGet, "https://api.example.test/allowed/thing", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", agentPlaceholder)
		req.Header.Set("Proxy-Authorization", "Basic YWdlbnQ6c2VjcmV0")
		req.Header.Set("X-Api-Key", "agent-api-key")
		resp, err := b.agent(t, true).Do(req)
		require.NoError(t, err)
		body := readAll(t, resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, body)

		got := lastRequestTo(t, up, "/allowed/thing")
		assert.Empty(t, got.Header.Values("Authorization"))
		assert.Empty(t, got.Header.Values("Proxy-Authorization"))
		assert.Empty(t, got.Header.Values("X-Api-Key"))
		assertNoValueContains(t, got.Header, "agent-placeholder")
	})

	// A credential in a trailer is the agent's too: it must not reach the
	// upstream, on a route that injects and on one that does not.
	t.Run("agent credentials in request trailers stripped", func(t *testing.T) {
		// api.example.test allows GET only: a GET with a body then.
		for url, method := range map[string]string{"https://chatgpt.com/backend-api/trailers": http.MethodPost, "https://api.example.test/allowed/trailers": http.MethodGet} {
			for _, h2 := range []bool{false, true} {
				body := io.MultiReader(strings.NewReader(`{"part":1}`), strings.NewReader(`{"part":2}`))
				req, err := http.NewRequest(method, url, body)
				require.NoError(t, err)
				req.ContentLength = -1 // chunked on HTTP/1.1, which trailers need
				req.Trailer = http.Header{"Authorization": {agentPlaceholder}, "X-Api-Key": {"agent-api-key"}, "X-Envoy-Retry-On": {"5xx"}, "X-Agent-Trailer": {"kept"}}
				resp, err := b.agent(t, h2).Do(req)
				require.NoError(t, err)
				resp.Body.Close()
				require.Equal(t, http.StatusOK, resp.StatusCode, "%s h2=%v", url, h2)
				got := lastRequestTo(t, up, req.URL.Path)
				if h2 {
					// Envoy drops HTTP/1.1 trailers altogether (its
					// http_protocol_options.enable_trailers is off).
					assert.Equal(t, "kept", got.Trailer.Get("X-Agent-Trailer"), "%s: the agent's other trailers pass", url)
				}
				assert.Empty(t, got.Trailer.Values("Authorization"), "%s h2=%v", url, h2)
				assert.Empty(t, got.Trailer.Values("X-Api-Key"), "%s h2=%v", url, h2)
				assert.Empty(t, got.Trailer.Values("X-Envoy-Retry-On"), "%s h2=%v", url, h2)
				assertNoValueContains(t, got.Trailer, "agent-placeholder")
			}
		}
	})

	t.Run("the upstream sees the agent's request, not Envoy's additions", func(t *testing.T) {
		for _, h2 := range []bool{false, true} {
			req, err := http.NewRequest(http.MethodGet, "https://chatgpt.com/backend-api/headers", nil)
			require.NoError(t, err)
			req.Header.Set("X-Envoy-Upstream-Rq-Timeout-Ms", "1")
			req.Header.Set("X-HTTP-Method-Override", "DELETE")
			req.Header.Set("X-Method-Override", "DELETE")
			req.Header.Set("X-HTTP-Method", "DELETE")
			req.Header.Set("X-Agent-Own", "kept")
			resp, err := b.agent(t, h2).Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			got := lastRequestTo(t, up, "/backend-api/headers").Header
			for name := range got {
				assert.False(t, strings.HasPrefix(strings.ToLower(name), "x-envoy-"), "%s reached the upstream", name)
			}
			for _, name := range []string{"X-Http-Method-Override", "X-Method-Override", "X-Http-Method", "X-Request-Id", "X-Forwarded-Proto", "X-Forwarded-For"} {
				assert.Empty(t, got.Values(name), "%s reached the upstream", name)
			}
			assert.Equal(t, "kept", got.Get("X-Agent-Own"))
			assert.Equal(t, []string{"Bearer " + login.accessToken}, got.Values("Authorization"))
		}

		// Envoy obeys x-envoy-retry-on from a client it trusts; the agent
		// is not one, or it could replay a credentialed request at will.
		before := len(up.requests())
		req, err := http.NewRequest(http.MethodGet, "https://api.example.test/allowed/status-503", nil)
		require.NoError(t, err)
		req.Header.Set("X-Envoy-Retry-On", "5xx")
		req.Header.Set("X-Envoy-Max-Retries", "3")
		resp, err := b.agent(t, false).Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		assert.Len(t, up.requests(), before+1, "one request upstream, no retries")
	})

	t.Run("host not in manifest refused", func(t *testing.T) {
		before := len(up.requests())
		status, header, body := rawConnect(t, b.proxy, "evil.example.test:443")
		assert.Equal(t, http.StatusForbidden, status)
		assert.Contains(t, body, "evil.example.test:443")
		assert.Contains(t, body, "not in the egress routes")
		assert.Contains(t, header.Get("X-Egressgate-Refused"), "evil.example.test:443")

		// The same refusal through an ordinary proxy client.
		_, err := b.agent(t, true).Get("https://evil.example.test/")
		require.Error(t, err)

		// Absolute-form plain HTTP gets the same answer.
		resp, err := proxiedPlainGet(t, b.proxy, "http://evil.example.test/x")
		require.NoError(t, err)
		assert.Equal(t, http.StatusForbidden, resp.status)
		assert.Contains(t, resp.body, "evil.example.test")
		assert.Len(t, up.requests(), before, "the upstream must receive nothing")
	})

	t.Run("path outside matches refused", func(t *testing.T) {
		client := b.agent(t, true)
		for _, c := range []struct{ method, url, want string }{
			{http.MethodGet, "https://api.example.test/forbidden/x", "GET /forbidden/x on api.example.test refused"},
			{http.MethodPost, "https://api.example.test/allowed/x", "POST /allowed/x on api.example.test refused"},
			{http.MethodGet, "https://chatgpt.com/admin", "GET /admin on chatgpt.com refused"},
		} {
			req, err := http.NewRequest(c.method, c.url, nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", agentPlaceholder)
			resp, err := client.Do(req)
			require.NoError(t, err)
			body := readAll(t, resp.Body)
			resp.Body.Close()
			assert.Equal(t, http.StatusForbidden, resp.StatusCode)
			assert.Contains(t, body, c.want)
		}
		for _, r := range up.requests() {
			assert.NotContains(t, []string{"/forbidden/x", "/admin"}, r.Path, "refused request reached the upstream")
			assert.False(t, r.Method == http.MethodPost && r.Path == "/allowed/x", "refused POST reached the upstream")
		}
	})

	// Route matching sees the normalised path, as the upstream does: dot
	// segments and escaped slashes cannot carry a request (and the
	// credential) outside a route's matches.
	t.Run("path tricks cannot escape matches", func(t *testing.T) {
		client := b.agent(t, true)
		for _, path := range []string{"/backend-api/../admin", "/backend-api/%2e%2e/admin", "/backend-api/..%2fadmin", "/backend-api/x/../../admin"} {
			req, err := http.NewRequest(http.MethodGet, "https://chatgpt.com"+path, nil)
			require.NoError(t, err)
			resp, err := client.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Contains(t, []int{http.StatusBadRequest, http.StatusForbidden}, resp.StatusCode, path)
		}
		for _, r := range up.requests() {
			assert.NotEqual(t, "/admin", r.Path, "a path trick reached the upstream outside /backend-api/")
		}
	})

	// A tunnel opened for one host cannot carry TLS for another: each
	// host's CONNECT lands on that host's own internal listener.
	t.Run("tunnel for one host refuses TLS for another", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", b.proxy, 5*time.Second)
		require.NoError(t, err)
		defer conn.Close()
		require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
		_, err = fmt.Fprintf(conn, "CONNECT api.example.test:443 HTTP/1.1\r\nHost: api.example.test:443\r\n\r\n")
		require.NoError(t, err)
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		tlsConn := tls.Client(&bufferedConn{Conn: conn, r: br}, &tls.Config{ServerName: "chatgpt.com", RootCAs: b.roots(t)})
		assert.Error(t, tlsConn.Handshake(), "TLS for chatgpt.com inside a tunnel to api.example.test")
	})

	t.Run("plain http to an allowed host refused", func(t *testing.T) {
		resp, err := proxiedPlainGet(t, b.proxy, "http://chatgpt.com/backend-api/codex/responses")
		require.NoError(t, err)
		assert.Equal(t, http.StatusForbidden, resp.status)
		assert.Contains(t, resp.body, "use https://chatgpt.com")
	})
}

// assertSSE reads the whole event stream and checks every event arrived,
// in order.
func assertSSE(t *testing.T, resp *http.Response) {
	t.Helper()
	var events []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if e, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
			events = append(events, e)
		}
	}
	require.NoError(t, sc.Err())
	assert.Equal(t, sseEvents, events)
}

func assertNoValueContains(t *testing.T, h http.Header, needle string) {
	t.Helper()
	for k, vs := range h {
		for _, v := range vs {
			assert.NotContains(t, v, needle, "header %s", k)
		}
	}
}

func lastRequestTo(t testing.TB, up *upstream, path string) seenRequest {
	t.Helper()
	seen := up.requests()
	for i := len(seen) - 1; i >= 0; i-- {
		if seen[i].Path == path {
			return seen[i]
		}
	}
	t.Fatalf("upstream never received %s", path)
	return seenRequest{}
}

// rawConnect sends one CONNECT by hand, so the test can read the refusal's
// body, which proxy clients drop.
func rawConnect(t *testing.T, proxy, authority string) (int, http.Header, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", proxy, 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", authority, authority)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: http.MethodConnect})
	require.NoError(t, err)
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		// An accepted CONNECT is a tunnel: there is no body to read.
		return resp.StatusCode, resp.Header, ""
	}
	return resp.StatusCode, resp.Header, readAll(t, resp.Body)
}

type plainResponse struct {
	status int
	body   string
}

// proxiedPlainGet sends an absolute-form GET through the proxy, the way
// HTTP_PROXY clients send plain-http requests.
func proxiedPlainGet(t *testing.T, proxy, target string) (plainResponse, error) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", proxy, 5*time.Second)
	if err != nil {
		return plainResponse{}, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		return plainResponse{}, err
	}
	if err := req.WriteProxy(conn); err != nil {
		return plainResponse{}, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return plainResponse{}, err
	}
	defer resp.Body.Close()
	return plainResponse{status: resp.StatusCode, body: readAll(t, resp.Body)}, nil
}

// bufferedConn reads first what a bufio.Reader already took off the wire.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
