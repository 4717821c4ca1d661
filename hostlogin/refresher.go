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
	// recheck is the longest the refresher sleeps without looking at the
	// file and the wall clock: timers do not count time the host spends
	// suspended, and a laptop that slept past a refresh must not sleep on.
	recheck = time.Minute
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
	path string
	log  *slog.Logger
	now  func() time.Time
	// Told of each outcome: "success", "failure" or "skipped" (someone
	// else had refreshed already).
	observe func(result string)
	poke    chan struct{}
	// write replaces the login file (writeLogin; tests make it fail).
	write func(path string, data []byte) error

	// refreshing serialises refreshes; it is held across the file lock
	// and the request to the endpoint, so nothing else waits on it.
	refreshing sync.Mutex

	// mu guards the fields below and is never held across I/O, so state
	// can be read while a refresh is under way.
	mu       sync.Mutex
	endpoint Endpoint
	// endpointKey says where endpoint goes, to notice a change.
	endpointKey string
	st          State
	// refused is the refresh token the endpoint refused for good: no
	// attempt is made with it again.
	refused string
	// failures count the attempts failed in a row with failedWith, the
	// refresh token the file held; a new one in the file starts afresh.
	failures   int
	failedWith string
	// notBefore is the earliest the next refresh may come.
	notBefore time.Time
	// recover asks for a refresh now, due or not: the provider rejected
	// the access token. lastRecover is when that was last granted.
	recover     bool
	lastRecover time.Time
	// pending is an answer the endpoint granted that could not be written
	// yet. The refresh token it replaced is spent, so it is written on the
	// next attempt instead of asking again, unless the file moved on.
	pending *granted
}

// granted is a refresh the endpoint granted, and the token it spent.
type granted struct {
	answer tokenAnswer
	spent  string
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
		poke: make(chan struct{}, 1), write: writeLogin, st: State{Login: path}}
}

// State returns the refresher's current state.
func (r *Refresher) State() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st
}

// SetEndpoint points the refresher at another token endpoint (the
// manifest's upstream for auth.openai.com changed). key names where it
// goes; SetEndpoint reports whether that differs from before.
func (r *Refresher) SetEndpoint(ep Endpoint, key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if key == r.endpointKey {
		return false
	}
	r.endpoint, r.endpointKey = ep, key
	return true
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
// revoked while the login itself still holds. It is granted at most once
// per recoverEvery, and not at all while the login is refused for good.
func (r *Refresher) Recover() {
	r.mu.Lock()
	now := r.now()
	if r.refused != "" || (!r.lastRecover.IsZero() && now.Sub(r.lastRecover) < recoverEvery) {
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
	f, err := readAuthFile(r.path)
	if err != nil {
		// Logged out or unreadable: nothing to refresh until the file
		// changes (a poke). config revokes the slot meanwhile.
		r.mu.Lock()
		r.st.NextRefresh = time.Time{}
		r.mu.Unlock()
		return recheck
	}
	r.mu.Lock()
	r.noticeNewLogin(f)
	stopped, due := r.refused != "", r.dueAt(f)
	r.mu.Unlock()
	switch {
	case stopped:
		return recheck
	case r.now().Before(due):
		return min(due.Sub(r.now()), recheck)
	}
	rewrote, err := r.Refresh(ctx)
	if rewrote {
		changed()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err != nil && r.refused != "":
		return recheck
	case r.st.NextRefresh.IsZero():
		return minInterval
	}
	return min(max(r.st.NextRefresh.Sub(r.now()), time.Second), recheck)
}

// noticeNewLogin starts afresh when the file holds a refresh token other
// than the one that failed or was refused: a new login on the host, or
// someone else's refresh. Callers hold r.mu.
func (r *Refresher) noticeNewLogin(f *authFile) {
	switch {
	case r.refused != "" && r.refused != f.refresh:
		r.refused, r.recover = "", false
	case r.failures > 0 && r.failedWith != f.refresh:
	default:
		return
	}
	r.failures, r.failedWith = 0, ""
	r.st.Stopped, r.st.Error, r.st.FailingSince = false, "", time.Time{}
}

// dueAt is when f's login is refreshed next, given past failures. Callers
// hold r.mu.
func (r *Refresher) dueAt(f *authFile) time.Time {
	due := maxTime(refreshAt(f.access.issued, f.access.expires), r.notBefore)
	if r.recover || r.pending != nil {
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
	r.refreshing.Lock()
	defer r.refreshing.Unlock()
	unlock, err := securefile.LockFile(r.path)
	if err != nil {
		return false, r.failed("", fmt.Errorf("%s: cannot lock it: %w", r.path, err))
	}
	defer unlock()
	f, err := readAuthFile(r.path)
	if err != nil {
		return false, r.failed("", err)
	}
	now := r.now()
	r.mu.Lock()
	recovering, pending, ep := r.recover, r.pending, r.endpoint
	r.recover, r.pending = false, nil
	r.mu.Unlock()
	if pending != nil && pending.spent == f.refresh {
		// Granted before but not written: the token in the file is spent.
		return r.save(f, pending.answer, now)
	}
	if now.Before(refreshAt(f.access.issued, f.access.expires)) && !recovering {
		r.observe("skipped")
		r.mu.Lock()
		r.st.NextRefresh = refreshAt(f.access.issued, f.access.expires)
		r.mu.Unlock()
		return false, nil
	}
	answer, err := ep.refresh(ctx, f.refresh)
	if err != nil {
		return r.refreshFailed(f, err)
	}
	// A host Codex that refreshed while we asked has written its own
	// tokens; keep them rather than overwrite a login it now holds.
	if again, rerr := readAuthFile(r.path); rerr == nil && again.refresh != f.refresh {
		r.succeeded(false)
		return true, nil
	}
	return r.save(f, answer, now)
}

// refreshFailed handles a refresh the endpoint did not grant.
func (r *Refresher) refreshFailed(f *authFile, err error) (bool, error) {
	var re *RefreshError
	if errors.As(err, &re) && re.Reused() {
		// Someone refreshed with the same token a moment before us. If
		// the file shows their new login, it is as good as ours.
		if again, rerr := readAuthFile(r.path); rerr == nil && again.refresh != f.refresh {
			r.succeeded(false)
			r.log.Info("the host's Codex login was refreshed by someone else; using theirs", "login", r.path)
			return true, nil
		}
	}
	if errors.As(err, &re) && re.Permanent {
		r.mu.Lock()
		r.refused = f.refresh
		r.mu.Unlock()
	}
	return false, r.failed(f.refresh, err)
}

// save writes a granted answer into the login f was read from. The
// refresh token f holds is spent from now on, so an answer that cannot be
// written is kept for the next attempt, and a short-lived token is
// written (it is the only login there is) but scheduled as a failure.
func (r *Refresher) save(f *authFile, answer tokenAnswer, now time.Time) (bool, error) {
	data, err := f.withTokens(answer, now)
	if err == nil {
		err = r.write(r.path, data)
	}
	if err != nil {
		r.mu.Lock()
		r.pending = &granted{answer: answer, spent: f.refresh}
		r.mu.Unlock()
		return false, r.failed(f.refresh, fmt.Errorf("%s: writing the refreshed login failed (kept, to write again): %w", r.path, err))
	}
	fresh, _ := readAccessToken(answer.AccessToken) // checked by refresh
	if fresh.expires.Sub(now) < minUseful {
		return true, r.failed(answer.RefreshToken, fmt.Errorf("the token endpoint answered with a token that expires at %s", fresh.expires.Format(time.RFC3339)))
	}
	r.succeeded(true)
	r.mu.Lock()
	r.notBefore = now.Add(min(max(fresh.expires.Sub(now)/2, time.Second), minInterval))
	r.st.NextRefresh = maxTime(refreshAt(fresh.issued, fresh.expires), r.notBefore)
	next := r.st.NextRefresh
	r.mu.Unlock()
	r.log.Info("refreshed the host's Codex login", "login", r.path, "expires", fresh.expires, "next_refresh", next)
	return true, nil
}

// succeeded records a refresh: ours, or someone else's.
func (r *Refresher) succeeded(ours bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ours {
		r.st.LastRefresh = r.now()
		r.observe("success")
	} else {
		r.observe("skipped")
	}
	r.failures, r.failedWith = 0, ""
	r.st.Error, r.st.FailingSince, r.st.Stopped = "", time.Time{}, false
}

// failed records a failed attempt with the refresh token with, schedules
// the retry and logs one line with the fix.
func (r *Refresher) failed(with string, err error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	r.observe("failure")
	if r.failures == 0 {
		r.st.FailingSince = now
	}
	r.failures++
	r.failedWith = with
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
