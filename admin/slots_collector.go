package admin

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/egressgate/egressgate/config"
)

// slotCollector reports credential slots at scrape time. A gauge set at
// reload would freeze "seconds until expiry" at the reload's moment; the
// host's Codex token expires between reloads, and that countdown is what
// an alert needs.
//
// Labels are the bottle, the slot name and the source description (an env
// var name or a file path), never the value: the value is read only
// through Present.
type slotCollector struct {
	slots   func() []BottleSlots
	now     func() time.Time
	expiry  *prometheus.Desc
	present *prometheus.Desc
	state   *prometheus.Desc
	failing *prometheus.Desc
}

func newSlotCollector(slots func() []BottleSlots, now func() time.Time) *slotCollector {
	labels := []string{"bottle", "slot", "source"}
	return &slotCollector{
		slots: slots,
		now:   now,
		expiry: prometheus.NewDesc("egressgate_credential_expiry_seconds",
			"Seconds until the slot's credential expires; negative once expired. Absent when the source gives no expiry.",
			labels, nil),
		present: prometheus.NewDesc("egressgate_credential_present",
			"1 if the slot holds a credential, 0 if it is empty.",
			labels, nil),
		state: prometheus.NewDesc("egressgate_credential_state",
			"1 for the slot's current state: ok (its credential is sent), empty, logged_out, expired or rejected (by its upstream).",
			append(labels, "state"), nil),
		failing: prometheus.NewDesc("egressgate_host_login_refresh_failing",
			"1 while egressgate's refreshes of the slot's host login fail (refresh_host_credentials), 0 otherwise.",
			labels, nil),
	}
}

// slotStates are every state, so that each slot reports all of them (one
// at 1) and an alert sees a state go from 0 to 1.
var slotStates = []string{SlotOK, SlotEmpty, SlotLoggedOut, SlotExpired, SlotRejected}

func (c *slotCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.expiry
	ch <- c.present
	ch <- c.state
	ch <- c.failing
}

func (c *slotCollector) Collect(ch chan<- prometheus.Metric) {
	if c.slots == nil {
		return
	}
	now := c.now()
	for _, b := range c.slots() {
		for _, s := range b.Slots {
			c.collectSlot(ch, now, b.Bottle, s, b.Facts[s.Name])
		}
	}
}

func (c *slotCollector) collectSlot(ch chan<- prometheus.Metric, now time.Time, bottle string, s config.Slot, f SlotFacts) {
	labels := []string{bottle, s.Name, s.Source.String()}
	present := 0.0
	if s.Present() {
		present = 1
	}
	ch <- prometheus.MustNewConstMetric(c.present, prometheus.GaugeValue, present, labels...)
	current, _ := SlotState(s, f, now)
	for _, state := range slotStates {
		v := 0.0
		if state == current {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, v, append(labels, state)...)
	}
	if f.Refresh != nil {
		failing := 0.0
		if f.Refresh.Error != "" {
			failing = 1
		}
		ch <- prometheus.MustNewConstMetric(c.failing, prometheus.GaugeValue, failing, labels...)
	}
	// An empty slot with a leftover expiry would read as a live countdown;
	// expiry describes a value, so without one there is nothing to report.
	if s.Expiry.IsZero() || !s.Present() {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.expiry, prometheus.GaugeValue, s.Expiry.Sub(now).Seconds(), labels...)
}
