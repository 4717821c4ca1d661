package hostlogin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/internal/standin"
	"github.com/egressgate/egressgate/internal/testenv"
)

// fixture is a host auth.json, a loopback token endpoint that rotates
// refresh tokens and refuses reused ones, and a refresher between them,
// all on a clock the test sets.
type fixture struct {
	path    string
	oauth   *standin.OAuth
	clock   *clock
	logs    *testenv.Buffer
	outcome map[string]int
	mu      sync.Mutex
	r       *Refresher
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

const life = time.Hour

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{clock: &clock{t: time.Now().Truncate(time.Second)}, logs: &testenv.Buffer{}, outcome: map[string]int{}}
	f.oauth = standin.NewOAuth("acct-standin", life)
	f.oauth.Now = f.clock.now
	srv := httptest.NewTLSServer(f.oauth)
	t.Cleanup(srv.Close)
	f.path = filepath.Join(t.TempDir(), "auth.json")
	require.NoError(t, os.WriteFile(f.path, f.oauth.AuthJSON(f.oauth.Login(), f.clock.now()), 0o600))

	ep := Endpoint{URL: srv.URL + "/oauth/token", Client: srv.Client()}
	f.r = f.newRefresher(ep)
	return f
}

func (f *fixture) newRefresher(ep Endpoint) *Refresher {
	return New(f.path, ep, testenv.Logger(f.logs), f.clock.now, func(result string) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.outcome[result]++
	})
}

func (f *fixture) outcomes() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for k, v := range f.outcome {
		out[k] = v
	}
	return out
}

// file reads the host auth.json back as JSON.
func (f *fixture) file(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile(f.path)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(data, &m))
	return m
}

func tokensOf(m map[string]any) map[string]any { return m["tokens"].(map[string]any) }

// dueLater moves the clock past the current login's refresh time.
func (f *fixture) makeDue(t *testing.T) {
	t.Helper()
	a, err := readAuthFile(f.path)
	require.NoError(t, err)
	f.clock.set(refreshAt(a.access.issued, a.access.expires).Add(time.Second))
}

func TestRefreshAt(t *testing.T) {
	iat := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		life time.Duration
		lead time.Duration
	}{
		{2 * time.Minute, time.Minute},        // half-way: never earlier
		{30 * time.Minute, 10 * time.Minute},  // at least minLead ahead
		{time.Hour, 15 * time.Minute},         // a quarter of its life
		{10 * 24 * time.Hour, 60 * time.Hour}, // long logins: a quarter
	}
	for _, tt := range tests {
		assert.Equal(t, iat.Add(tt.life-tt.lead), refreshAt(iat, iat.Add(tt.life)), "life %s", tt.life)
	}
	// Without iat: minLead ahead of expiry.
	assert.Equal(t, iat.Add(-minLead), refreshAt(time.Time{}, iat))
	// Always ahead of the few minutes in which Codex refreshes by itself.
	for _, l := range []time.Duration{20 * time.Minute, time.Hour, 24 * time.Hour} {
		assert.GreaterOrEqual(t, iat.Add(l).Sub(refreshAt(iat, iat.Add(l))), 10*time.Minute)
	}
}

// TestRefreshWritesCodexFormat: a due login is refreshed with Codex's
// client id, the rotated tokens are written back atomically with mode
// 0600, and every other field, known or not, is kept.
func TestRefreshWritesCodexFormat(t *testing.T) {
	f := newFixture(t)
	before := f.file(t)

	// Not due: nothing is asked.
	rewrote, err := f.r.Refresh(context.Background())
	require.NoError(t, err)
	assert.False(t, rewrote)
	assert.Zero(t, f.oauth.Refreshes())

	f.makeDue(t)
	rewrote, err = f.r.Refresh(context.Background())
	require.NoError(t, err)
	assert.True(t, rewrote)
	assert.Equal(t, 1, f.oauth.Refreshes())

	after := f.file(t)
	old, updated := tokensOf(before), tokensOf(after)
	for _, k := range []string{"access_token", "refresh_token", "id_token"} {
		assert.NotEqual(t, old[k], updated[k], k)
	}
	assert.Equal(t, old["account_id"], updated["account_id"])
	assert.Equal(t, before["auth_mode"], after["auth_mode"])
	assert.Nil(t, after["OPENAI_API_KEY"])
	assert.Contains(t, after, "OPENAI_API_KEY", "a null API key stays null, not absent")
	assert.Equal(t, map[string]any{"kept": true}, after["agent_identity_hint"], "fields egressgate does not know survive")
	assert.Equal(t, f.clock.now().UTC().Format(time.RFC3339Nano), after["last_refresh"])
	fi, err := os.Stat(f.path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	st := f.r.State()
	assert.Equal(t, f.clock.now(), st.LastRefresh)
	assert.Empty(t, st.Error)
	assert.True(t, st.NextRefresh.After(f.clock.now()))
	assert.Equal(t, map[string]int{"skipped": 1, "success": 1}, f.outcomes(), "one look too early, one refresh")
	assert.NotContains(t, f.logs.String(), updated["refresh_token"].(string))
	assert.NotContains(t, f.logs.String(), updated["access_token"].(string))
}

// TestSomeoneElseRefreshedFirst: the host's Codex refreshed just before
// egressgate looked; the file is re-read under the lock and its fresh
// login used, with no request to the endpoint.
func TestSomeoneElseRefreshedFirst(t *testing.T) {
	f := newFixture(t)
	f.makeDue(t)
	hostRefresh(t, f)
	rewrote, err := f.r.Refresh(context.Background())
	require.NoError(t, err)
	assert.False(t, rewrote)
	assert.Zero(t, f.oauth.Refreshes(), "the endpoint is not asked")
	assert.Equal(t, map[string]int{"skipped": 1}, f.outcomes())
}

// TestConcurrentHostRefresh: the host's Codex refreshes with the same
// refresh token at the very moment egressgate does. The endpoint grants
// the host's and refuses egressgate's as reused; egressgate finds the
// host's new login in the file and keeps it, without an error.
func TestConcurrentHostRefresh(t *testing.T) {
	f := newFixture(t)
	f.makeDue(t)
	var once sync.Once
	f.oauth.Before(func(string) { once.Do(func() { hostRefresh(t, f) }) })
	hostTokens := func() map[string]any { return tokensOf(f.file(t)) }

	rewrote, err := f.r.Refresh(context.Background())
	require.NoError(t, err)
	assert.True(t, rewrote, "the file changed under us")
	assert.Equal(t, 1, f.oauth.Refreshes())
	kept := hostTokens()

	// The host's login is the one in the file, and it still works.
	tok, status, _ := f.oauth.Refresh(kept["refresh_token"].(string))
	assert.Equal(t, http.StatusOK, status)
	assert.NotEmpty(t, tok.AccessToken)
	assert.Empty(t, f.r.State().Error)
	assert.Equal(t, map[string]int{"skipped": 1}, f.outcomes())
}

// TestReusedTokenStopsUntilNewLogin: a refresh token refused as reused,
// with no newer login in the file, is a dead login. The refresher says so
// once, with the fix, asks nothing more with that token, and starts again
// when a person logs in anew.
func TestReusedTokenStopsUntilNewLogin(t *testing.T) {
	f := newFixture(t)
	a, err := readAuthFile(f.path)
	require.NoError(t, err)
	_, status, _ := f.oauth.Refresh(a.refresh) // used elsewhere, result lost
	require.Equal(t, http.StatusOK, status)
	f.makeDue(t)

	ctx := context.Background()
	wait := f.r.step(ctx, func() {})
	st := f.r.State()
	assert.True(t, st.Stopped)
	assert.Contains(t, st.Error, "refresh_token_reused")
	assert.Contains(t, st.Error, "codex login --device-auth")
	assert.Equal(t, recheck, wait)
	for range 5 {
		f.clock.set(f.clock.now().Add(time.Hour))
		f.r.step(ctx, func() {})
	}
	assert.Equal(t, 1, f.oauth.Refreshes(), "no second attempt with a refused token")
	assert.Equal(t, 1, strings.Count(f.logs.String(), "refresh_token_reused"), "one log line")

	// A new login on the host: due again later, and refreshed.
	require.NoError(t, os.WriteFile(f.path, f.oauth.AuthJSON(f.oauth.Login(), f.clock.now()), 0o600))
	f.makeDue(t)
	changed := false
	f.r.step(ctx, func() { changed = true })
	assert.True(t, changed)
	assert.False(t, f.r.State().Stopped)
	assert.Empty(t, f.r.State().Error)
}

// TestFailuresBackOff: an endpoint that keeps failing is asked again after
// 30 s, 1 min, 2 min … up to 10 min, never in a tight loop, and each
// failure is one log line naming the fix.
func TestFailuresBackOff(t *testing.T) {
	f := newFixture(t)
	f.oauth.FailWith(http.StatusServiceUnavailable)
	f.makeDue(t)
	ctx := context.Background()
	// Run as Run does, sleeping what step says, and note when the
	// endpoint is asked.
	var gaps []time.Duration
	last := f.clock.now()
	for f.oauth.Refreshes() < 7 {
		asked := f.oauth.Refreshes()
		wait := f.r.step(ctx, func() {})
		assert.LessOrEqual(t, wait, recheck, "never asleep longer than recheck")
		if f.oauth.Refreshes() > asked && asked > 0 {
			gaps = append(gaps, f.clock.now().Sub(last))
		}
		if f.oauth.Refreshes() > asked {
			last = f.clock.now()
		}
		f.clock.set(f.clock.now().Add(wait))
	}
	assert.Equal(t, []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 10 * time.Minute}, gaps)
	st := f.r.State()
	assert.Contains(t, st.Error, "answered 503")
	assert.Contains(t, st.Error, "codex login --device-auth")
	assert.False(t, st.Stopped, "a 503 may pass")
	assert.Equal(t, 7, strings.Count(f.logs.String(), "refreshing the host's Codex login failed"))

	// Back up: the next attempt succeeds and clears the failure.
	f.oauth.FailWith(0)
	f.clock.set(f.r.State().NextRefresh)
	changed := false
	f.r.step(ctx, func() { changed = true })
	assert.True(t, changed)
	assert.Empty(t, f.r.State().Error)
	assert.True(t, f.r.State().FailingSince.IsZero())
}

// TestUnreachableEndpoint: nobody listening is a failure with a reason,
// not a crash or a hang.
func TestUnreachableEndpoint(t *testing.T) {
	f := newFixture(t)
	ep, err := NewEndpoint("127.0.0.1:1", nil)
	require.NoError(t, err)
	f.r = f.newRefresher(ep)
	f.makeDue(t)
	_, err = f.r.Refresh(context.Background())
	require.Error(t, err)
	assert.Contains(t, f.r.State().Error, "could not be reached")
}

// TestRefreshersShareOneRefresh: two refreshers on one file (two bottles,
// or two egressgate processes) due at once make one refresh between them.
func TestRefreshersShareOneRefresh(t *testing.T) {
	f := newFixture(t)
	f.makeDue(t)
	other := f.newRefresher(f.r.endpoint)
	var wg sync.WaitGroup
	for _, r := range []*Refresher{f.r, other} {
		wg.Go(func() {
			_, err := r.Refresh(context.Background())
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	assert.Equal(t, 1, f.oauth.Refreshes())
	assert.Equal(t, map[string]int{"success": 1, "skipped": 1}, f.outcomes())
}

// TestLoggedOutIsIdle: no file, nothing asked, no error.
func TestLoggedOutIsIdle(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, os.Remove(f.path))
	assert.Equal(t, recheck, f.r.step(context.Background(), func() {}))
	assert.Zero(t, f.oauth.Refreshes())
}

// hostRefresh is the host's Codex refreshing on its own: it rotates the
// login at the endpoint and writes its answer into auth.json.
func hostRefresh(t *testing.T, f *fixture) {
	t.Helper()
	a, err := readAuthFile(f.path)
	require.NoError(t, err)
	tok, status, _ := f.oauth.Refresh(a.refresh)
	require.Equal(t, http.StatusOK, status)
	require.NoError(t, os.WriteFile(f.path, f.oauth.AuthJSON(tok, f.clock.now()), 0o600))
}

// TestUselessTokensBackOff: an endpoint that hands out tokens already
// expired would have the refresher ask again at once, forever; it is a
// failure and backs off like one.
func TestUselessTokensBackOff(t *testing.T) {
	f := newFixture(t)
	f.makeDue(t)
	f.oauth.Life = -time.Minute
	wait := f.r.step(context.Background(), func() {})
	assert.Equal(t, firstBackoff, wait)
	assert.Contains(t, f.r.State().Error, "answered with a token that expires at")
	assert.Equal(t, map[string]int{"failure": 1}, f.outcomes())
}

// TestShortLivedLoginsRefreshedHalfway: a login that lives seconds (a
// test's, or a very strict provider's) is refreshed half-way through, not
// held back by the interval that protects long-lived ones.
func TestShortLivedLoginsRefreshedHalfway(t *testing.T) {
	f := newFixture(t)
	f.oauth.Life = 8 * time.Second
	require.NoError(t, os.WriteFile(f.path, f.oauth.AuthJSON(f.oauth.Login(), f.clock.now()), 0o600))
	f.makeDue(t)
	changed := false
	wait := f.r.step(context.Background(), func() { changed = true })
	require.True(t, changed)
	assert.Equal(t, f.clock.now().Add(4*time.Second).Truncate(time.Second), f.r.State().NextRefresh.Truncate(time.Second))
	assert.LessOrEqual(t, wait, minInterval)
}

// TestRecoverRefreshesAtOnce: after the provider rejects the access token,
// the login is refreshed at once, not at its scheduled time, and once.
func TestRecoverRefreshesAtOnce(t *testing.T) {
	f := newFixture(t)
	f.r.Recover()
	changed := 0
	f.r.step(context.Background(), func() { changed++ })
	assert.Equal(t, 1, changed)
	assert.Equal(t, 1, f.oauth.Refreshes())
	f.r.step(context.Background(), func() { changed++ })
	assert.Equal(t, 1, f.oauth.Refreshes(), "recovering is asked once")
}

// TestRecoverSpaced: a provider rejecting every new token gets one
// out-of-schedule refresh per recoverEvery, not one per rejection.
func TestRecoverSpaced(t *testing.T) {
	f := newFixture(t)
	for range 3 {
		f.r.Recover()
		f.r.step(context.Background(), func() {})
	}
	assert.Equal(t, 1, f.oauth.Refreshes())
	f.clock.set(f.clock.now().Add(recoverEvery))
	f.r.Recover()
	f.r.step(context.Background(), func() {})
	assert.Equal(t, 2, f.oauth.Refreshes())
}

// TestGrantedAnswerNeverLost: once the endpoint has granted a refresh,
// the refresh token in the file is spent. An answer that cannot be
// written is kept and written on the next attempt, without asking again;
// asking with the spent token would be refused as reused and lose the
// host's login.
func TestGrantedAnswerNeverLost(t *testing.T) {
	f := newFixture(t)
	f.makeDue(t)
	failWrites := true
	f.r.write = func(path string, data []byte) error {
		if failWrites {
			return errors.New("disk full")
		}
		return writeLogin(path, data)
	}
	ctx := context.Background()
	f.r.step(ctx, func() {})
	assert.Contains(t, f.r.State().Error, "disk full")
	assert.Equal(t, 1, f.oauth.Refreshes())

	failWrites = false
	f.clock.set(f.r.State().NextRefresh)
	changed := false
	f.r.step(ctx, func() { changed = true })
	assert.True(t, changed)
	assert.Equal(t, 1, f.oauth.Refreshes(), "the kept answer was written; nothing asked again")
	assert.Empty(t, f.r.State().Error)

	// The login in the file is the granted one: the endpoint takes it.
	a, err := readAuthFile(f.path)
	require.NoError(t, err)
	_, status, _ := f.oauth.Refresh(a.refresh)
	assert.Equal(t, http.StatusOK, status)
}

// TestShortLivedAnswerKept: a granted token that expires too soon to count
// is still written (the old refresh token is spent) and the next attempt,
// after the backoff, uses the new refresh token.
func TestShortLivedAnswerKept(t *testing.T) {
	f := newFixture(t)
	f.makeDue(t)
	f.oauth.Life = time.Second
	ctx := context.Background()
	f.r.step(ctx, func() {})
	assert.Contains(t, f.r.State().Error, "answered with a token that expires at")
	f.oauth.Life = time.Hour
	f.clock.set(f.r.State().NextRefresh)
	f.r.step(ctx, func() {})
	st := f.r.State()
	assert.False(t, st.Stopped, "the second attempt used the new refresh token, not the spent one")
	assert.Empty(t, st.Error)
	assert.Equal(t, 2, f.oauth.Refreshes())
}

// TestRecoverNotKeptWhileStopped: a recovery asked while the login is
// refused for good does not rotate the new login a person makes later.
func TestRecoverNotKeptWhileStopped(t *testing.T) {
	f := newFixture(t)
	a, err := readAuthFile(f.path)
	require.NoError(t, err)
	_, _, _ = f.oauth.Refresh(a.refresh) // spent elsewhere
	f.makeDue(t)
	ctx := context.Background()
	f.r.step(ctx, func() {})
	require.True(t, f.r.State().Stopped)
	f.r.Recover()
	require.NoError(t, os.WriteFile(f.path, f.oauth.AuthJSON(f.oauth.Login(), f.clock.now()), 0o600))
	f.r.step(ctx, func() {})
	assert.Equal(t, 1, f.oauth.Refreshes(), "a new login that is not due is left alone")
	assert.False(t, f.r.State().Stopped)
}

// TestFailureClearedBySomeoneElsesRefresh: after a failure, the host's
// Codex refreshing the file itself clears the failing state at once.
func TestFailureClearedBySomeoneElsesRefresh(t *testing.T) {
	f := newFixture(t)
	f.oauth.FailWith(http.StatusServiceUnavailable)
	f.makeDue(t)
	ctx := context.Background()
	f.r.step(ctx, func() {})
	require.NotEmpty(t, f.r.State().Error)
	f.oauth.FailWith(0)
	hostRefresh(t, f)
	f.r.step(ctx, func() {})
	st := f.r.State()
	assert.Empty(t, st.Error)
	assert.True(t, st.FailingSince.IsZero())
}

// TestRedirectNotFollowed: the refresh token goes to the token endpoint
// or nowhere, never to where a redirect points.
func TestRedirectNotFollowed(t *testing.T) {
	var elsewhere int
	other := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere++ }))
	t.Cleanup(other.Close)
	redirect := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirect.Close)
	ep, err := NewEndpoint("", nil)
	require.NoError(t, err)
	ep.URL = redirect.URL + "/oauth/token"
	tr := ep.Client.Transport.(*http.Transport)
	tr.TLSClientConfig = redirect.Client().Transport.(*http.Transport).TLSClientConfig
	_, err = ep.refresh(context.Background(), "rt-secret")
	var re *RefreshError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, http.StatusTemporaryRedirect, re.Status)
	assert.False(t, re.Permanent)
	assert.Zero(t, elsewhere)
}
