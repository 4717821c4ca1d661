package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/admin"
)

// refusalLimit is how long a refused turn may take to end with the reason
// in Codex's output: the bound for a person to be told, not left
// watching a CLI retry.
const refusalLimit = 15 * time.Second

// hostTokenRequests counts the upstream requests to chatgpt.com that
// carried token.
func hostTokenRequests(up *upstream, token string) int {
	n := 0
	for _, r := range requestsTo(up, "chatgpt.com") {
		if r.Header.Get("Authorization") == "Bearer "+token {
			n++
		}
	}
	return n
}

// refreshAnswers counts the refreshes the egress answered for the agent.
func refreshAnswers(b *bottle) int {
	return strings.Count(b.stderr.String(), "answered codex token refresh with placeholders")
}

// TestRealCodexShowsRefusals: for each way the host's credential fails, the
// real Codex CLI's turn ends within 15 s with the egress's reason and its
// fix in Codex's own output, with no refresh loop and nothing more sent
// upstream with a dead token.
func TestRealCodexShowsRefusals(t *testing.T) {
	pki := newUpstreamPKI(t, testHosts...)
	up := newUpstream(t, pki)
	login := newHostLogin(t, time.Now().Add(time.Hour))
	authJSON := filepath.Join(login.home, "auth.json")
	b := startBottle(t, bottleOptions{manifest: codexManifest(true, up, pki), codexHome: login.home})
	agent := newCodexAgent(t, b, login.home)
	relogin := func(t *testing.T, exp time.Time) *hostLogin {
		t.Helper()
		l := newHostLogin(t, exp)
		replaceFile(t, authJSON, readFile(t, filepath.Join(l.home, "auth.json")))
		eventually(t, propagation, "the new host login", func() bool {
			st := slotState(t, b)
			return st.Present && st.Expiry != nil && st.Expiry.Unix() == exp.Unix() && st.State == admin.SlotOK
		})
		return l
	}
	refused := func(t *testing.T, wants ...string) string {
		t.Helper()
		output, took := agent.turn(t, 2*refusalLimit)
		t.Logf("codex exec (%s):\n%s", took.Round(time.Millisecond), tail([]byte(output), 2<<10))
		assert.Less(t, took, refusalLimit, "the reason reached the person within %s", refusalLimit)
		assert.NotContains(t, output, codexReply)
		for _, w := range wants {
			assert.Contains(t, output, w)
		}
		assert.NotContains(t, output, login.home, "no host path in what the agent shows")
		return output
	}

	t.Run("upstream rejects the token", func(t *testing.T) {
		l := relogin(t, time.Now().Add(time.Hour))
		up.revoke("Bearer " + l.accessToken)
		answersBefore := refreshAnswers(b)
		refused(t, "chatgpt.com rejected the host's Codex login", "codex login --device-auth")
		sent := hostTokenRequests(up, l.accessToken)
		t.Logf("the rejected token went upstream %d times; %d refreshes answered", sent, refreshAnswers(b)-answersBefore)
		// Codex opens its turn with half a dozen requests in parallel;
		// those already on their way when the first 401 comes back are
		// the most the refused token can travel. A loop would be dozens.
		assert.LessOrEqual(t, sent, 8, "no loop with a token the provider refuses")
		assert.LessOrEqual(t, refreshAnswers(b)-answersBefore, 3)
		assert.Equal(t, admin.SlotRejected, slotState(t, b).State)

		// The next turn does not even try the rejected token.
		refused(t, "chatgpt.com rejected the host's Codex login")
		assert.Equal(t, sent, hostTokenRequests(up, l.accessToken))
	})

	t.Run("logged out", func(t *testing.T) {
		relogin(t, time.Now().Add(time.Hour))
		require.NoError(t, os.Remove(authJSON))
		eventually(t, propagation, "the logout", func() bool { return slotState(t, b).State == admin.SlotLoggedOut })
		refused(t, "the host's Codex login is gone", "logged out", "codex login --device-auth")
	})

	t.Run("api key mode", func(t *testing.T) {
		relogin(t, time.Now().Add(time.Hour))
		writeAuthJSON(t, login.home, map[string]any{"auth_mode": "apikey", "OPENAI_API_KEY": "sk-test-not-real"})
		eventually(t, propagation, "the switch to an API key", func() bool { return slotState(t, b).State == admin.SlotLoggedOut })
		refused(t, "the host's Codex login is gone", "codex login --device-auth")
	})

	t.Run("expired", func(t *testing.T) {
		relogin(t, time.Now().Add(2*time.Second))
		eventually(t, propagation, "the expiry", func() bool { return slotState(t, b).State == admin.SlotExpired })
		refused(t, "the host's Codex login (EGRESS_TOKEN_0) expired at", "codex login --device-auth")
	})

	t.Run("logged in again", func(t *testing.T) {
		l := relogin(t, time.Now().Add(time.Hour))
		output, _ := agent.turn(t, 90*time.Second)
		assert.Contains(t, output, codexReply)
		assert.Positive(t, hostTokenRequests(up, l.accessToken))
	})
}

// TestRealCodexNearExpiry: with the host token 60 s and 120 s from expiry,
// turns of the real Codex CLI over a minute make at most 3 refreshes
// (the placeholder is nowhere near Codex's refresh window) and no burst
// of requests with the host token; each turn completes, or, once the host
// token has expired, ends with the egress's reason.
func TestRealCodexNearExpiry(t *testing.T) {
	for _, left := range []time.Duration{60 * time.Second, 120 * time.Second} {
		t.Run(left.String(), func(t *testing.T) {
			t.Parallel()
			pki := newUpstreamPKI(t, testHosts...)
			up := newUpstream(t, pki)
			// JWT expiry is in whole seconds.
			exp := time.Now().Add(left).Truncate(time.Second)
			login := newHostLogin(t, exp)
			b := startBottle(t, bottleOptions{manifest: codexManifest(true, up, pki), codexHome: login.home})
			agent := newCodexAgent(t, b, login.home)

			// A minute of turns, and for the token that expires within it,
			// a few more seconds to see turns after the expiry.
			var completed, refused, mostPerTurn int
			end := time.Now().Add(60 * time.Second)
			if exp.Before(end) {
				end = exp.Add(8 * time.Second)
			}
			for time.Now().Before(end) {
				before := hostTokenRequests(up, login.accessToken)
				started := time.Now()
				output, took := agent.turn(t, 2*refusalLimit)
				sent := hostTokenRequests(up, login.accessToken) - before
				mostPerTurn = max(mostPerTurn, sent)
				ended := started.Add(took)
				switch {
				case strings.Contains(output, codexReply):
					completed++
				case strings.Contains(output, "the host's Codex login (EGRESS_TOKEN_0) expired at"):
					// A turn that straddles the expiry is refused from
					// its first request after it.
					assert.False(t, ended.Before(exp), "a turn was refused as expired before the expiry")
					assert.Contains(t, output, "codex login --device-auth")
					assert.Less(t, took, refusalLimit)
					if !started.Before(exp) {
						assert.Zero(t, sent, "an expired host token reached the upstream")
					}
					refused++
				default:
					t.Errorf("a turn neither completed nor ended with the reason:\n%s", tail([]byte(output), 2<<10))
				}
				time.Sleep(2 * time.Second) // paces the turns; nothing waits on it
			}
			refreshes := refreshAnswers(b)
			t.Logf("host token %s from expiry: %d turns completed, %d refused after expiry, %d refreshes, at most %d host-token requests in one turn",
				left, completed, refused, refreshes, mostPerTurn)
			assert.Positive(t, completed)
			assert.LessOrEqual(t, refreshes, 3, "refreshes in a 60 s run")
			// A Codex 0.171 turn asks chatgpt.com about twenty things
			// (routing, models, plugins, MCP, the turn); the storm this
			// guards against sent 700 in 30 s.
			assert.LessOrEqual(t, mostPerTurn, 30, "a turn's requests, not a burst")
			if left < time.Minute+time.Second {
				assert.Positive(t, refused, "turns after the expiry end with the reason")
			}
		})
	}
}
