package integration

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// propagation bounds how long a change may take to be served; the
// benchmark measures the real figure (well under 100 ms).
const propagation = 10 * time.Second

// liveManifest has no agent template: a route per host in hosts, all to
// the loopback upstream; the first one carries the token in tokenFile.
func liveManifest(up *upstream, pki *upstreamPKI, tokenFile string, hosts ...string) string {
	var sb strings.Builder
	sb.WriteString("name: itest\negress:\n  routes:\n")
	for i, h := range hosts {
		fmt.Fprintf(&sb, "    - host: %s\n      upstream: {address: %q, ca_file: %q}\n", h, up.addr(), pki.caPath)
		if i == 0 && tokenFile != "" {
			fmt.Fprintf(&sb, "      auth: {scheme: Bearer, token_file: %q}\n", tokenFile)
		}
	}
	return sb.String()
}

// get sends one GET through the egress and returns the status code.
func get(t testing.TB, c *http.Client, url string) int {
	t.Helper()
	resp, err := c.Get(url)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

func TestRoutesChangeWithoutRestart(t *testing.T) {
	hosts := []string{"api.example.test", "new.example.test"}
	pki := newUpstreamPKI(t, hosts...)
	up := newUpstream(t, pki)
	b := startBottle(t, bottleOptions{manifest: liveManifest(up, pki, "", "api.example.test")})
	client := b.agent(t, true)
	pid := b.envoyPID(t)

	require.Equal(t, http.StatusOK, get(t, client, "https://api.example.test/x"))
	_, err := client.Get("https://new.example.test/x")
	require.Error(t, err, "new.example.test is not in the manifest yet")

	// Add and remove the route a few times, polling back to back: while the
	// route is being added every attempt must be refused cleanly or served.
	// A CONNECT accepted before Envoy can terminate the new host's TLS (a
	// half-applied policy) fails some other way, for a few milliseconds.
	for cycle := range 5 {
		replaceFile(t, b.manifest, liveManifest(up, pki, "", hosts...))
		deadline := time.Now().Add(propagation)
		for n := 0; ; n++ {
			require.True(t, time.Now().Before(deadline), "cycle %d: route not served after %s", cycle, propagation)
			resp, err := b.agent(t, true).Get(fmt.Sprintf("https://new.example.test/added/%d/%d", cycle, n))
			if err != nil {
				require.ErrorContains(t, err, "Forbidden", "cycle %d: only a refused CONNECT may fail", cycle)
				continue
			}
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			break
		}
		replaceFile(t, b.manifest, liveManifest(up, pki, "", "api.example.test"))
		eventually(t, propagation, "the route to be removed again", func() bool {
			status, _, _ := rawConnect(t, b.proxy, "new.example.test:443")
			return status == http.StatusForbidden
		})
	}

	replaceFile(t, b.manifest, liveManifest(up, pki, "", hosts...))
	eventually(t, propagation, "the added route to be served", func() bool {
		return served(t, b.egress, "https://new.example.test/added")
	})

	replaceFile(t, b.manifest, liveManifest(up, pki, "", "new.example.test"))
	eventually(t, propagation, "the removed route to be refused", func() bool {
		status, _, _ := rawConnect(t, b.proxy, "api.example.test:443")
		return status == http.StatusForbidden
	})
	assert.Equal(t, pid, b.envoyPID(t), "Envoy must not restart")
}

func TestHostTokenRefresh(t *testing.T) {
	pki := newUpstreamPKI(t, testHosts...)
	up := newUpstream(t, pki)
	first := newHostLogin(t, time.Now().Add(time.Hour))
	b := startBottle(t, bottleOptions{manifest: codexManifest(true, up, pki), codexHome: first.home})
	client := b.agent(t, true)
	send := func(path string) string {
		req, err := http.NewRequest(http.MethodGet, "https://chatgpt.com"+path, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", agentPlaceholder)
		resp, err := client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		return lastRequestTo(t, up, path).Header.Get("Authorization")
	}
	require.Equal(t, "Bearer "+first.accessToken, send("/backend-api/before"))

	// Codex refreshes the login on the host: a new auth.json replaces the
	// old one by rename.
	second := newHostLogin(t, time.Now().Add(2*time.Hour))
	replaceFile(t, filepath.Join(first.home, "auth.json"), readFile(t, filepath.Join(second.home, "auth.json")))
	// The first login expires in 1h, the second in 2h.
	eventually(t, propagation, "status to show the refreshed login", func() bool {
		slots := status(t, b.admin).Bottles[0].Slots
		return len(slots) == 1 && slots[0].Expiry != nil && slots[0].Expiry.After(time.Now().Add(90*time.Minute))
	})
	for i := range 5 {
		assert.Equal(t, "Bearer "+second.accessToken, send(fmt.Sprintf("/backend-api/after/%d", i)))
	}
	for _, r := range up.requests() {
		if strings.HasPrefix(r.Path, "/backend-api/after/") {
			assert.NotContains(t, r.Header.Get("Authorization"), first.accessToken, "old token after refresh")
		}
	}
}

func TestBrokenManifestKeepsServing(t *testing.T) {
	pki := newUpstreamPKI(t, "api.example.test")
	up := newUpstream(t, pki)
	good := liveManifest(up, pki, "", "api.example.test")
	b := startBottle(t, bottleOptions{manifest: good})
	client := b.agent(t, true)

	replaceFile(t, b.manifest, good+"    - host: bad.example.test\n      tls: passthru\n")
	var reloadErr string
	eventually(t, propagation, "status to report the broken manifest", func() bool {
		reloadErr = status(t, b.admin).Bottles[0].LastReloadError
		return reloadErr != ""
	})
	assert.Contains(t, reloadErr, filepath.Base(b.manifest)+":7:", "the error names file and line")
	assert.Contains(t, reloadErr, "passthru")
	assert.Equal(t, http.StatusOK, get(t, client, "https://api.example.test/still-served"))
	code, out, stderr := runEgressgate(t, "status", "--admin", b.admin)
	assert.Equal(t, 1, code, "status exits non-zero while the last reload failed")
	assert.Contains(t, out, "LAST RELOAD FAILED")
	assert.Contains(t, stderr, "the last reload failed")

	replaceFile(t, b.manifest, good)
	eventually(t, propagation, "the error to clear after a good edit", func() bool {
		return status(t, b.admin).Bottles[0].LastReloadError == ""
	})
	code, _, stderr = runEgressgate(t, "status", "--admin", b.admin)
	assert.Zero(t, code, stderr)
	_, err := os.Stat(b.manifest)
	require.NoError(t, err)
}

func TestExpiredHostTokenRefusedWithFix(t *testing.T) {
	pki := newUpstreamPKI(t, testHosts...)
	up := newUpstream(t, pki)
	// JWT expiry has a resolution of seconds; three leave time to start.
	login := newHostLogin(t, time.Now().Add(3*time.Second))
	b := startBottle(t, bottleOptions{manifest: codexManifest(true, up, pki), codexHome: login.home})
	eventually(t, propagation, "a warning ahead of expiry", func() bool {
		return strings.Contains(b.stderr.String(), "credential expires soon")
	})

	metrics := httpGet(t, "http://"+b.admin+"/metrics")
	assert.Contains(t, metrics, `egressgate_credential_expiry_seconds{bottle="itest",slot="EGRESS_TOKEN_0"`)
	assert.NotContains(t, metrics, login.accessToken)

	code, out, stderr := runEgressgate(t, "status", "--admin", b.admin)
	require.Zero(t, code, stderr)
	assert.Contains(t, out, "itest")
	assert.Contains(t, out, "EGRESS_TOKEN_0")
	assert.NotContains(t, out, login.accessToken)

	client := b.agent(t, true)
	send := func(path string) (int, string) {
		resp, err := client.Get("https://chatgpt.com" + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		return resp.StatusCode, readAll(t, resp.Body)
	}
	// 400 with a text body: what Codex prints at once instead of retrying.
	eventually(t, propagation, "the expired token to be refused", func() bool {
		status, _ := send("/backend-api/until-expiry")
		return status == http.StatusBadRequest
	})
	status, body := send("/backend-api/after-expiry")
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, body, "expired")
	assert.Contains(t, body, "codex login --device-auth")
	for _, r := range up.requests() {
		assert.NotEqual(t, "/backend-api/after-expiry", r.Path, "a request without a valid credential reached the upstream")
	}
}

func httpGet(t testing.TB, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return readAll(t, resp.Body)
}

func TestSIGHUPReloads(t *testing.T) {
	pki := newUpstreamPKI(t, "api.example.test")
	up := newUpstream(t, pki)
	b := startBottle(t, bottleOptions{manifest: liveManifest(up, pki, "", "api.example.test")})
	before := status(t, b.admin).Bottles[0].LastReload
	require.NoError(t, b.cmd.Process.Signal(syscall.SIGHUP))
	eventually(t, propagation, "a reload after SIGHUP", func() bool {
		return status(t, b.admin).Bottles[0].LastReload.After(before)
	})
	assert.Equal(t, http.StatusOK, get(t, b.agent(t, true), "https://api.example.test/after-hup"))
	// One line for the signal, one for the outcome: an operator sees both.
	logs := b.stderr.String()
	assert.Equal(t, 1, strings.Count(logs, "SIGHUP: reloading"), logs)
	assert.Equal(t, 1, strings.Count(logs, `msg="reloaded; configuration unchanged" bottle=itest`), logs)
	assert.Contains(t, logs, "trigger=SIGHUP")
}
