// Package hostlogin keeps the host's Codex ChatGPT login fresh on behalf of
// a bottle that runs for days, so it does not depend on someone using
// Codex on the host. It is opt-in (agent_provider.refresh_host_credentials)
// and the one place besides config that reads the host's auth.json: it
// holds the refresh token in its own memory, talks only to the token
// endpoint, and writes the result back in Codex's own format, atomically
// and mode 0600, so the host's Codex keeps working. Nothing but the file
// leaves it; egressgate's watcher picks the new access token up from there
// like any other change.
package hostlogin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/egressgate/egressgate/internal/securefile"
)

// Fix is what a person does when the refresher cannot: log in again.
const Fix = "run 'codex login --device-auth' on the host"

// Timing. Codex refreshes a token with less than a few minutes left on
// every use; refreshing well before that means the host's Codex finds a
// fresh token instead of racing egressgate with the same refresh token,
// which the endpoint would refuse to one of them as reused.
const (
	// minLead is how long before expiry a login is refreshed at the
	// latest, for tokens that live long enough to allow it.
	minLead = 10 * time.Minute
	// minInterval bounds how soon after a refresh the next may come: half
	// the new token's remaining life, but at least a second and at most
	// this. With tokens that live hours the schedule is hours anyway; it
	// only ever matters for tokens that live minutes or less.
	minInterval = 30 * time.Second
	// minUseful is the least life a refreshed token must have to count as
	// a success; an endpoint handing out tokens already (nearly) expired
	// is failing, and backs off like any other failure.
	minUseful = 2 * time.Second
	// Failures back off from firstBackoff, doubling up to maxBackoff.
	firstBackoff = 30 * time.Second
	maxBackoff   = 10 * time.Minute
	// idleCheck is how often an idle refresher looks at the file even
	// when nobody pokes it.
	idleCheck = time.Hour
	// recoverEvery spaces refreshes out of schedule (Recover): a provider
	// that rejects every new token must not make each rejected request
	// cost a refresh.
	recoverEvery = 10 * time.Minute
)

// refreshAt is when a token issued at issued and expiring at expires is
// refreshed: a quarter of its life ahead of expiry, at least minLead, and
// never earlier than half-way (a token that lives two minutes is refreshed
// after one).
func refreshAt(issued, expires time.Time) time.Time {
	life := expires.Sub(issued)
	if issued.IsZero() || life <= 0 {
		return expires.Add(-minLead)
	}
	lead := min(life/2, max(life/4, minLead))
	return expires.Add(-lead)
}

// State is the refresher as status and metrics show it.
type State struct {
	Login string `json:"login"`
	// LastRefresh is egressgate's last successful refresh; zero if none.
	LastRefresh time.Time `json:"last_refresh,omitzero"`
	// NextRefresh is when the next refresh is due or will be retried.
	NextRefresh time.Time `json:"next_refresh,omitzero"`
	// Error is why the last attempt failed, with the fix; "" after a
	// success. FailingSince is when failures began.
	Error        string    `json:"error,omitempty"`
	FailingSince time.Time `json:"failing_since,omitzero"`
	// Stopped: the endpoint refused the refresh token for good, and the
	// refresher waits for a new login on the host.
	Stopped bool `json:"stopped,omitempty"`
}

// Refresher keeps one auth.json fresh. One Refresher serves every bottle
// sharing that file; its refreshes never overlap, in this process (a
// mutex) or across egressgate processes (a lock on the file).
type Refresher struct {
	path     string
	endpoint Endpoint
	log      *slog.Logger
	now      func() time.Time
	// Told of each outcome: "success", "failure" or "skipped" (someone
	// else had refreshed already).
	observe func(result string)

	poke chan struct{}
	mu   sync.Mutex // one refresh at a time; guards the fields below
	st   State
	// refused is the refresh token the endpoint refused for good: no
	// attempt is made with it again.
	refused  string
	failures int
	// notBefore is the earliest the next refresh may come.
	notBefore time.Time
	// recover asks for a refresh now, due or not: the provider rejected
	// the access token. lastRecover is when that was last granted.
	recover     bool
	lastRecover time.Time
}

// New returns a refresher for the auth.json at path. A nil logger
// discards logs, a nil now is time.Now, a nil observe ignores outcomes.
func New(path string, endpoint Endpoint, log *slog.Logger, now func() time.Time, observe func(string)) *Refresher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	if observe == nil {
		observe = func(string) {}
	}
	return &Refresher{path: path, endpoint: endpoint, log: log, now: now, observe: observe,
		poke: make(chan struct{}, 1), st: State{Login: path}}
}

// State returns the refresher's current state.
func (r *Refresher) State() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st
}

// Poke makes Run look at the file now: it changed (a new login clears a
// refusal; someone else's refresh moves the schedule).
func (r *Refresher) Poke() {
	select {
	case r.poke <- struct{}{}:
	default:
	}
}

// Recover asks for a refresh now, due or not, as Codex does when the
// provider answers 401 to its access token: the access token may be
// revoked while the login itself still holds. It is asked once per call
// (egressgate calls it once per rejected value), and never sooner than
// recoverEvery since the last such refresh.
func (r *Refresher) Recover() {
	r.mu.Lock()
	now := r.now()
	if !r.lastRecover.IsZero() && now.Sub(r.lastRecover) < recoverEvery {
		r.mu.Unlock()
		return
	}
	r.recover, r.lastRecover = true, now
	r.mu.Unlock()
	r.Poke()
}

// Run refreshes the login whenever it is due, until ctx ends. changed is
// called after every refresh that rewrote the file.
func (r *Refresher) Run(ctx context.Context, changed func()) {
	for {
		wait := r.step(ctx, changed)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		case <-r.poke:
			timer.Stop()
		}
	}
}

// step refreshes if due and returns how long to wait before looking again.
func (r *Refresher) step(ctx context.Context, changed func()) time.Duration {
	now := r.now()
	f, err := readAuthFile(r.path)
	if err != nil {
		// Logged out or unreadable: nothing to refresh until the file
		// changes (a poke). config revokes the slot meanwhile.
		r.mu.Lock()
		r.st.NextRefresh = time.Time{}
		r.mu.Unlock()
		return idleCheck
	}
	r.mu.Lock()
	if r.refused != "" && r.refused != f.refresh {
		// A new login: start afresh.
		r.refused, r.failures, r.st.Stopped, r.st.Error, r.st.FailingSince = "", 0, false, "", time.Time{}
	}
	stopped := r.refused != ""
	due := r.dueAt(f)
	r.mu.Unlock()
	switch {
	case stopped:
		return idleCheck
	case now.Before(due):
		return min(due.Sub(now), idleCheck)
	}
	rewrote, err := r.Refresh(ctx)
	if rewrote {
		changed()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err != nil && r.refused != "":
		return idleCheck
	case r.st.NextRefresh.IsZero():
		return minInterval
	}
	return min(max(r.st.NextRefresh.Sub(r.now()), time.Second), idleCheck)
}

// dueAt is when f's login is refreshed next, given past failures. Callers
// hold r.mu.
func (r *Refresher) dueAt(f *authFile) time.Time {
	due := maxTime(refreshAt(f.access.issued, f.access.expires), r.notBefore)
	if r.recover {
		due = time.Time{}
	}
	if r.failures > 0 {
		due = maxTime(due, r.st.NextRefresh)
	}
	r.st.NextRefresh = due
	return due
}

// Refresh refreshes the login if it is due, and reports whether the file
// was rewritten (by us, or by someone who refreshed while we asked). The
// file is re-read under its lock first: if someone else refreshed it in
// the meantime, their login is used and nothing is asked.
func (r *Refresher) Refresh(ctx context.Context) (rewrote bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	unlock, err := securefile.LockFile(r.path)
	if err != nil {
		return false, r.failed(fmt.Errorf("%s: cannot lock it: %w", r.path, err))
	}
	defer unlock()
	f, err := readAuthFile(r.path)
	if err != nil {
		return false, r.failed(err)
	}
	now := r.now()
	recovering := r.recover
	r.recover = false
	if now.Before(refreshAt(f.access.issued, f.access.expires)) && !recovering {
		r.observe("skipped")
		r.st.NextRefresh = refreshAt(f.access.issued, f.access.expires)
		return false, nil
	}
	answer, err := r.endpoint.refresh(ctx, f.refresh)
	if err != nil {
		if re := (*RefreshError)(nil); errors.As(err, &re) && re.Reused() {
			// Someone refreshed with the same token a moment before us.
			// If the file shows their new login, it is as good as ours.
			if again, rerr := readAuthFile(r.path); rerr == nil && again.refresh != f.refresh {
				r.succeeded(false)
				r.log.Info("the host's Codex login was refreshed by someone else; using theirs", "login", r.path)
				return true, nil
			}
		}
		if re := (*RefreshError)(nil); errors.As(err, &re) && re.Permanent {
			r.refused = f.refresh
		}
		return false, r.failed(err)
	}
	// A host Codex that refreshed while we asked has written its own
	// tokens; keep them rather than overwrite a login it now holds.
	if again, rerr := readAuthFile(r.path); rerr == nil && again.refresh != f.refresh {
		r.succeeded(false)
		return true, nil
	}
	fresh, _ := readAccessToken(answer.AccessToken) // checked by refresh
	if fresh.expires.Sub(now) < minUseful {
		return false, r.failed(fmt.Errorf("the token endpoint answered with a token that expires at %s", fresh.expires.Format(time.RFC3339)))
	}
	data, err := f.withTokens(answer, now)
	if err == nil {
		err = securefile.WriteAtomic(r.path, data, 0o600)
	}
	if err != nil {
		return false, r.failed(fmt.Errorf("%s: writing the refreshed login failed: %w", r.path, err))
	}
	r.succeeded(true)
	r.notBefore = now.Add(min(max(fresh.expires.Sub(now)/2, time.Second), minInterval))
	r.st.NextRefresh = maxTime(refreshAt(fresh.issued, fresh.expires), r.notBefore)
	r.log.Info("refreshed the host's Codex login", "login", r.path, "expires", fresh.expires, "next_refresh", r.st.NextRefresh)
	return true, nil
}

// succeeded records a refresh. Callers hold r.mu.
func (r *Refresher) succeeded(ours bool) {
	if ours {
		r.st.LastRefresh = r.now()
		r.observe("success")
	} else {
		r.observe("skipped")
	}
	r.failures, r.st.Error, r.st.FailingSince, r.st.Stopped = 0, "", time.Time{}, false
}

// failed records a failure, schedules the retry and logs one line with the
// fix. Callers hold r.mu.
func (r *Refresher) failed(err error) error {
	now := r.now()
	r.observe("failure")
	if r.failures == 0 {
		r.st.FailingSince = now
	}
	r.failures++
	backoff := min(firstBackoff<<min(r.failures-1, 10), maxBackoff)
	r.st.NextRefresh = now.Add(backoff)
	r.st.Stopped = r.refused != ""
	msg := "refreshing the host's Codex login failed: " + err.Error()
	switch {
	case r.st.Stopped:
		msg += "; " + Fix
		r.st.NextRefresh = time.Time{}
		r.log.Error(msg, "login", r.path)
	default:
		msg += fmt.Sprintf("; retrying in %s (if it keeps failing: %s)", backoff, Fix)
		r.log.Warn(msg, "login", r.path, "retry_at", r.st.NextRefresh)
	}
	r.st.Error = msg
	return err
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
