package integration

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWebSocketThroughEgress is Codex's Responses WebSocket: the upgrade
// request carries the host token (and not the agent's), and messages flow
// both ways through the MITM path.
func TestWebSocketThroughEgress(t *testing.T) {
	pki := newUpstreamPKI(t, testHosts...)
	up := newUpstream(t, pki)
	login := newHostLogin(t, time.Now().Add(time.Hour))
	b := startBottle(t, bottleOptions{manifest: codexManifest(true, up, pki), codexHome: login.home})

	pem, err := os.ReadFile(filepath.Join(b.stateDir, "ca.pem"))
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(pem))
	proxyURL, err := url.Parse("http://" + b.proxy)
	require.NoError(t, err)
	dialer := websocket.Dialer{
		Proxy:            http.ProxyURL(proxyURL),
		TLSClientConfig:  &tls.Config{RootCAs: roots},
		HandshakeTimeout: 10 * time.Second,
	}
	header := http.Header{"Authorization": {agentPlaceholder}}
	conn, resp, err := dialer.Dial("wss://chatgpt.com/backend-api/codex/responses/ws", header)
	if resp != nil {
		t.Logf("upgrade answer: %s", resp.Status)
	}
	require.NoError(t, err)
	defer conn.Close()

	for _, msg := range []string{`{"type":"response.create"}`, "second message"} {
		require.NoError(t, conn.WriteMessage(websocket.TextMessage, []byte(msg)))
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
		_, got, err := conn.ReadMessage()
		require.NoError(t, err)
		assert.Equal(t, "echo: "+msg, string(got))
	}
	upgrade := lastRequestTo(t, up, "/backend-api/codex/responses/ws")
	assert.Equal(t, []string{"Bearer " + login.accessToken}, upgrade.Header.Values("Authorization"))
	assertNoValueContains(t, upgrade.Header, "agent-placeholder")
}
