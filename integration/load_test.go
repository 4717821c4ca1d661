package integration

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sentRequest is one load request as the agent saw it.
type sentRequest struct {
	id     string
	sentAt time.Time
	status int
	err    error
}

// TestReloadsUnderLoad rotates both host credentials and changes the routes
// 20 times while several agents keep sending requests. No request may fail,
// and none may reach the upstream with a missing credential or one older
// than the rotation confirmed before it was sent.
func TestReloadsUnderLoad(t *testing.T) {
	const rotations = 20
	pki := newUpstreamPKI(t, append(testHosts, "toggle.example.test")...)
	up := newUpstream(t, pki)
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "api-token")
	manifest := func(i int) string {
		m := codexManifest(true, up, pki)
		m = strings.Replace(m, "    - host: api.example.test\n", fmt.Sprintf("    - host: api.example.test\n      auth: {scheme: Bearer, token_file: %q}\n", tokenFile), 1)
		if i%2 == 1 {
			m = strings.Replace(m, "  routes:\n", fmt.Sprintf("  routes:\n    - host: toggle.example.test\n      upstream: {address: %q, ca_file: %q}\n", up.addr(), pki.caPath), 1)
		}
		return m
	}
	logins := []*hostLogin{newHostLogin(t, time.Now().Add(time.Hour))}
	fileTokens := []string{"file-token-0"}
	replaceFile(t, tokenFile, fileTokens[0]+"\n")
	b := startBottle(t, bottleOptions{manifest: manifest(0), codexHome: logins[0].home, manifestPath: filepath.Join(dir, "bottle.md")})

	var stop atomic.Bool
	var mu sync.Mutex
	var sent []sentRequest
	var wg sync.WaitGroup
	for w := range 4 {
		client := b.agent(t, w%2 == 0)
		wg.Go(func() {
			for n := 0; !stop.Load(); n++ {
				host := []string{"chatgpt.com/backend-api", "api.example.test/allowed"}[n%2]
				id := fmt.Sprintf("w%d-%d", w, n)
				req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("https://%s/load/%s", host, id), nil)
				if err != nil {
					panic(err)
				}
				req.Header.Set("Authorization", agentPlaceholder)
				s := sentRequest{id: id, sentAt: time.Now()}
				resp, err := client.Do(req)
				if err == nil {
					s.status = resp.StatusCode
					resp.Body.Close()
				}
				s.err = err
				mu.Lock()
				sent = append(sent, s)
				mu.Unlock()
			}
		})
	}

	// applied[i] is when rotation i was confirmed served: a probe sent
	// before it carried token i, so every request sent after it must too.
	applied := []time.Time{time.Now()}
	probe := b.agent(t, true)
	sentSoFar := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(sent)
	}
	for i := 1; i <= rotations; i++ {
		// Each rotation lands on traffic: a dozen requests at least since
		// the last one, however slow the machine (-race, DLP on).
		before := sentSoFar()
		eventually(t, propagation, fmt.Sprintf("load before rotation %d", i), func() bool { return sentSoFar() >= before+12 })
		fileTokens = append(fileTokens, fmt.Sprintf("file-token-%d", i))
		replaceFile(t, tokenFile, fileTokens[i]+"\n")
		replaceFile(t, b.manifest, manifest(i))
		login := newHostLogin(t, time.Now().Add(time.Hour+time.Duration(i)*time.Minute))
		logins = append(logins, login)
		// Written last: once a probe carries this token, the reload that
		// read it had also read the token file and manifest above.
		replaceFile(t, filepath.Join(logins[0].home, "auth.json"), readFile(t, filepath.Join(login.home, "auth.json")))
		eventually(t, propagation, fmt.Sprintf("rotation %d to be served", i), func() bool {
			path := fmt.Sprintf("/backend-api/probe/%d/%d", i, time.Now().UnixNano())
			resp, err := probe.Get("https://chatgpt.com" + path)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return lastRequestTo(t, up, path).Header.Get("Authorization") == "Bearer "+login.accessToken
		})
		applied = append(applied, time.Now())
	}
	stop.Store(true)
	wg.Wait()

	tokenIndex := map[string]int{}
	for i, l := range logins {
		tokenIndex["Bearer "+l.accessToken] = i
	}
	for i, tok := range fileTokens {
		tokenIndex["Bearer "+tok] = i
	}
	received := map[string]string{}
	for _, r := range up.requests() {
		if id, ok := strings.CutPrefix(r.Path, "/allowed/load/"); ok {
			received[id] = r.Header.Get("Authorization")
		} else if id, ok := strings.CutPrefix(r.Path, "/backend-api/load/"); ok {
			received[id] = r.Header.Get("Authorization")
		}
	}
	require.Greater(t, len(sent), 10*rotations, "too little load to mean anything")
	failures, stale := 0, 0
	for _, s := range sent {
		if s.err != nil || s.status != http.StatusOK {
			failures++
			t.Errorf("request %s failed: status %d, %v", s.id, s.status, s.err)
			continue
		}
		auth, ok := received[s.id]
		require.True(t, ok, "request %s answered 200 but never reached the upstream", s.id)
		idx, known := tokenIndex[auth]
		if !known {
			t.Errorf("request %s reached the upstream with a missing or unknown credential", s.id)
			continue
		}
		if want := rotationAt(applied, s.sentAt); idx < want {
			stale++
			t.Errorf("request %s sent after rotation %d carried token %d", s.id, want, idx)
		}
	}
	t.Logf("%d requests across %d rotations: %d failed, %d stale", len(sent), rotations, failures, stale)
	assert.NotContains(t, b.stderr.String(), "reload failed")
	_, err := os.Stat(tokenFile)
	require.NoError(t, err)
}

// rotationAt is the newest rotation confirmed served at t.
func rotationAt(applied []time.Time, t time.Time) int {
	idx := 0
	for i, a := range applied {
		if !a.After(t) {
			idx = i
		}
	}
	return idx
}
