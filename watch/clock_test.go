package watch

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// fakeClock moves only when Advance is called, and fires its timers then.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	fires  int
	resets int
	// reset receives a value, without blocking, on each Reset.
	reset chan struct{}
}

type fakeTimer struct {
	clock *fakeClock
	ch    chan time.Time
	at    time.Time
	armed bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), reset: make(chan struct{}, 1)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer() timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{clock: c, ch: make(chan time.Time, 1)}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves the clock by d and fires every timer now due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, t := range c.timers {
		c.fireLocked(t)
	}
}

// fired counts the ticks the clock's timers have delivered.
func (c *fakeClock) fired() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fires
}

// resetCount is how many times the clock's timers have been reset.
func (c *fakeClock) resetCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.resets
}

// waitResets waits until the timers have been reset more than n times.
func (c *fakeClock) waitResets(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(eventually)
	for c.resetCount() <= n {
		select {
		case <-c.reset: // re-check: the signal may be an older Reset's
		case <-deadline:
			t.Fatalf("the timer was not reset within %s", eventually)
		}
	}
}

func (c *fakeClock) fireLocked(t *fakeTimer) {
	if !t.armed || t.at.After(c.now) {
		return
	}
	t.armed = false
	c.fires++
	t.ch <- c.now // cannot block: Reset and Stop empty ch, and firing disarms
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Reset(d time.Duration) {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	t.drainLocked()
	t.at, t.armed = t.clock.now.Add(d), true
	t.clock.resets++
	select {
	case t.clock.reset <- struct{}{}:
	default:
	}
	t.clock.fireLocked(t) // a zero delay is due at once, as with time.Timer
}

func (t *fakeTimer) Stop() {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	t.drainLocked()
	t.armed = false
}

func (t *fakeTimer) drainLocked() {
	select {
	case <-t.ch:
	default:
	}
}

// callOn logs to the test's output like start's logger, and calls on,
// on the watcher's goroutine, whenever the watcher logs an event on path.
type callOn struct {
	slog.Handler
	path string
	on   func()
}

func (h callOn) Handle(ctx context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "path" && a.Value.String() == h.path {
			h.on()
		}
		return true
	})
	return h.Handler.Handle(ctx, r)
}

// logCalling is a debug logger for t that calls on whenever the watcher
// logs handling an event on path.
func logCalling(t *testing.T, path string, on func()) *slog.Logger {
	text := slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})
	return slog.New(callOn{Handler: text, path: path, on: on})
}
