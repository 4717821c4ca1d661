package integration

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/admin"
)

// rotationLog records, from outside, when the egress took each host
// token: the moment /status showed the slot at the expiry of the token
// auth.json held. A request that reaches the upstream after a newer token
// was taken, carrying an older one, is stale.
type rotationLog struct {
	mu    sync.Mutex
	taken []rotation
}

type rotation struct {
	token string
	at    time.Time
}

// follow polls until ctx ends.
func (l *rotationLog) follow(ctx context.Context, t *testing.T, b *bottle, authJSON string) {
	for ctx.Err() == nil {
		token, exp, ok := fileToken(authJSON)
		st, err := fetchStatus(b.admin)
		if ok && err == nil && len(st.Bottles) == 1 && len(st.Bottles[0].Slots) == 1 {
			s := st.Bottles[0].Slots[0]
			if s.Present && s.Expiry != nil && s.Expiry.Unix() == exp.Unix() {
				l.mu.Lock()
				if n := len(l.taken); n == 0 || l.taken[n-1].token != token {
					l.taken = append(l.taken, rotation{token: token, at: time.Now()})
				}
				l.mu.Unlock()
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond): // poll interval
		}
	}
}

// stale returns the requests that carried a token older than one the
// egress had already taken when they arrived.
func (l *rotationLog) stale(seen []seenRequest) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	order := map[string]int{}
	for i, r := range l.taken {
		order["Bearer "+r.token] = i
	}
	var out []string
	for _, r := range seen {
		i, ok := order[r.Header.Get("Authorization")]
		if !ok {
			continue
		}
		for _, later := range l.taken[i+1:] {
			if later.at.Before(r.At) {
				out = append(out, r.Method+" "+r.Path+" at "+r.At.Format(time.StampMilli))
				break
			}
		}
	}
	return out
}

func (l *rotationLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.taken)
}

// fileToken is the access token in a host auth.json, and its expiry.
func fileToken(path string) (string, time.Time, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", time.Time{}, false
	}
	var f struct {
		Tokens struct {
			AccessToken string `json:"access_token"`
		} `json:"tokens"`
	}
	if json.Unmarshal(data, &f) != nil || f.Tokens.AccessToken == "" {
		return "", time.Time{}, false
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(f.Tokens.AccessToken, claims); err != nil {
		return "", time.Time{}, false
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return "", time.Time{}, false
	}
	return f.Tokens.AccessToken, exp.Time, true
}

// TestRealCodexLifecycle runs the real Codex CLI through a bottle's life,
// time-compressed: host logins that live 20 s, refreshed by egressgate
// (three rotations and more, every token always near expiry), an upstream
// 401, a logout and a new login. Every turn completes with the current
// host token or ends with the egress's reason in Codex's output; the agent
// refreshes a bounded number of times; and no request carries a host
// token older than one the egress had already taken.
func TestRealCodexLifecycle(t *testing.T) {
	rb := startRefreshingBottle(t, 20*time.Second)
	b, up, home, authJSON := rb.bottle, rb.up, rb.home, rb.authJSON
	agent := newCodexAgent(t, b, home)

	rotations := &rotationLog{}
	ctx, stop := context.WithCancel(context.Background())
	followed := make(chan struct{})
	go func() { defer close(followed); rotations.follow(ctx, t, b, authJSON) }()
	t.Cleanup(func() { stop(); <-followed })

	turns := 0
	completes := func(t *testing.T) {
		t.Helper()
		turns++
		output, took := agent.turn(t, 90*time.Second)
		require.Contains(t, output, codexReply, "turn %d (%s) did not complete:\n%s", turns, took, tail([]byte(output), 2<<10))
		current, _, ok := fileToken(authJSON)
		require.True(t, ok)
		turn := lastRequestTo(t, up, "/backend-api/codex/responses")
		// The token may have rotated between the turn and this look.
		if got := turn.Header.Get("Authorization"); got != "Bearer "+current {
			assert.Less(t, time.Since(turn.At), 5*time.Second, "turn %d carried a token that is not the host's current one", turns)
		}
	}
	refusedWith := func(t *testing.T, want string) {
		t.Helper()
		turns++
		output, took := agent.turn(t, 2*refusalLimit)
		assert.Less(t, took, refusalLimit)
		assert.Contains(t, output, want, "turn %d:\n%s", turns, tail([]byte(output), 2<<10))
		assert.Contains(t, output, "codex login --device-auth")
	}

	t.Run("rotations", func(t *testing.T) {
		for rotations.count() < 4 {
			completes(t)
			time.Sleep(time.Second) // paces the turns; nothing waits on it
		}
	})

	t.Run("upstream 401", func(t *testing.T) {
		current, _, ok := fileToken(authJSON)
		require.True(t, ok)
		up.revoke("Bearer " + current)
		refusedWith(t, "chatgpt.com rejected the host's Codex login")
		// egressgate refreshes the rejected login at once, as Codex would
		// on a 401, and the new token is one the upstream takes.
		eventually(t, propagation, "a new host token after the rejection", func() bool {
			return slotState(t, b).State == admin.SlotOK
		})
		completes(t)
	})

	t.Run("logout and login", func(t *testing.T) {
		require.NoError(t, os.Remove(authJSON))
		eventually(t, propagation, "the logout", func() bool { return slotState(t, b).State == admin.SlotLoggedOut })
		refusedWith(t, "the host's Codex login is gone")
		replaceFile(t, authJSON, string(up.oauth.AuthJSON(up.oauth.Login(), time.Now())))
		eventually(t, propagation, "the new login", func() bool { return slotState(t, b).State == admin.SlotOK })
		completes(t)
		completes(t)
	})

	stop()
	<-followed
	answers := refreshAnswers(b)
	stale := rotations.stale(requestsTo(up, "chatgpt.com"))
	t.Logf("%d turns, %d host tokens taken by the egress, %d refreshes by egressgate, %d refresh answers to the agent, %d stale requests",
		turns, rotations.count(), up.oauth.Refreshes(), answers, len(stale))
	assert.GreaterOrEqual(t, rotations.count(), 5, "three rotations, the one after the 401, the new login")
	assert.LessOrEqual(t, answers, 3, "the agent's placeholder needs no refresh; at most after the 401")
	assert.Empty(t, stale, "requests carried a host token after a newer one was taken: %s", strings.Join(stale, "; "))
}
