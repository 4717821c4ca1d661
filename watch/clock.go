package watch

import "time"

// clock is the debounce's time source. Tests use one that moves only when
// told: whether a burst is coalesced then depends on the events, not on
// how fast a loaded machine delivers them.
type clock interface {
	Now() time.Time
	// NewTimer returns a stopped timer.
	NewTimer() timer
}

// timer is the part of time.Timer the debounce uses.
type timer interface {
	C() <-chan time.Time
	// Reset rearms the timer and discards a tick not yet received (as
	// time.Timer does since Go 1.23).
	Reset(d time.Duration)
	Stop()
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer() timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return realTimer{t}
}

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time   { return r.t.C }
func (r realTimer) Reset(d time.Duration) { r.t.Reset(d) }
func (r realTimer) Stop()                 { r.t.Stop() }
