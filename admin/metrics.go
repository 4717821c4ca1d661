package admin

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/egressgate/egressgate/audit"
	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/internal/buildinfo"
)

// ExtProc decisions counted by ExtProcDecision; the same words the extproc
// server logs as "action".
const (
	ActionInject = "inject"
	ActionStrip  = "strip"
	ActionDeny   = "deny"
	ActionAnswer = "answer"
)

// Reload results, the "result" label of egressgate_reloads_total.
const (
	resultSuccess = "success"
	resultFailure = "failure"
)

// BottleSlots is one bottle's credential slots as the slot collector reads
// them at scrape time.
type BottleSlots struct {
	Bottle string
	Slots  []config.Slot
	// Facts are what egressgate learned about the slots at run time.
	Facts map[string]SlotFacts
}

// Metrics records egressgate's own events. Its methods are safe for
// concurrent use.
type Metrics struct {
	reloads         *prometheus.CounterVec
	lastSuccess     *prometheus.GaugeVec
	lastSuccessTime *prometheus.GaugeVec
	extproc         *prometheus.CounterVec
	// extprocByAction holds extproc's counters, made once: a decision
	// is counted on every agent request, without the vector's lookup.
	extprocByAction map[string]prometheus.Counter
	rejections      *prometheus.CounterVec
	refreshes       *prometheus.CounterVec
	requests        *prometheus.CounterVec
	dlpDetections   *prometheus.CounterVec
	xdsEvents       *prometheus.CounterVec
	extprocLatency  prometheus.Histogram
	reg             prometheus.Registerer
}

// NewMetrics registers egressgate's metrics with reg. The registry is
// passed in rather than global so that tests, and several servers in one
// process, never collide. slots is called on every scrape, so credential
// expiry is computed against the scrape's clock rather than the last
// reload's; it must return current data and be safe to call concurrently.
func NewMetrics(reg prometheus.Registerer, slots func() []BottleSlots) *Metrics {
	m := &Metrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "egressgate_reloads_total",
			Help: "Policy reloads by bottle and result (success or failure).",
		}, []string{"bottle", "result"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "egressgate_last_reload_success",
			Help: "1 if the bottle's last reload succeeded, 0 if it failed and the previous policy is still served.",
		}, []string{"bottle"}),
		lastSuccessTime: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "egressgate_last_reload_timestamp_seconds",
			Help: "Unix time of the bottle's last successful reload.",
		}, []string{"bottle"}),
		extproc: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "egressgate_extproc_requests_total",
			Help: "ext_proc request decisions by action (inject, strip, deny, answer).",
		}, []string{"action"}),
	}
	m.rejections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "egressgate_credential_rejections_total",
		Help: "Upstream refusals (401) of an injected host credential, by bottle, slot and host; each stops the slot's routes until the host credential changes.",
	}, []string{"bottle", "slot", "host"})
	m.reg = reg
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "egressgate_requests_total",
		Help: "Agent requests and CONNECTs by bottle, host, decision (forwarded_with_credential, forwarded, answered, refused, failed_closed) and reason, from the audit trail; hosts the bottle does not route to count as \"other\".",
	}, []string{"bottle", "host", "decision", "reason"})
	m.dlpDetections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "egressgate_dlp_detections_total",
		Help: "Secrets found in agent requests on routes with DLP on, from the audit trail, by bottle, host, kind (known-secret, canary, pattern or a format such as github-token), where (path, header, body, trailer, websocket) and action (block: refused; log: recorded and forwarded).",
	}, []string{"bottle", "host", "kind", "where", "action"})
	m.xdsEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "egressgate_xds_responses_total",
		Help: "xDS responses pushed to each node (an Envoy, or a split-mode ext_proc sidecar), by resource type and outcome: pushed when sent, then acked or nacked as the node answered.",
	}, []string{"node", "type", "outcome"})
	m.extprocLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "egressgate_extproc_decision_seconds",
		Help: "Time ext_proc takes to decide one request's headers (strip, inject, refuse or answer), from Envoy's message to the answer.",
		// 25 µs to ~100 ms: decisions take tens of microseconds; the top
		// buckets catch a struggling process well before Envoy's 2 s limit.
		Buckets: prometheus.ExponentialBuckets(25e-6, 2, 13),
	})
	m.refreshes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "egressgate_host_login_refreshes_total",
		Help: "Refreshes of the host's Codex login by egressgate (refresh_host_credentials), by login file and result (success, failure, skipped: someone else had refreshed).",
	}, []string{"login", "result"})
	// Start every action at zero so rate() and alerts on deny work before
	// the first denial rather than from the scrape after it.
	m.extprocByAction = map[string]prometheus.Counter{}
	for _, a := range []string{ActionInject, ActionStrip, ActionDeny, ActionAnswer} {
		m.extprocByAction[a] = m.extproc.WithLabelValues(a)
	}
	reg.MustRegister(m.reloads, m.lastSuccess, m.lastSuccessTime, m.extproc, m.rejections, m.refreshes, m.requests, m.dlpDetections, m.xdsEvents, m.extprocLatency,
		newSlotCollector(slots, time.Now))
	return m
}

// CredentialRejected counts an upstream's refusal of bottle's slot.
func (m *Metrics) CredentialRejected(bottle, slot, host string) {
	m.rejections.WithLabelValues(bottle, slot, host).Inc()
}

// HostLoginRefreshed counts one outcome of the host login refresher for
// the login file at login.
func (m *Metrics) HostLoginRefreshed(login, result string) {
	for _, r := range []string{"success", "failure", "skipped"} {
		m.refreshes.WithLabelValues(login, r)
	}
	m.refreshes.WithLabelValues(login, result).Inc()
}

// ReloadSucceeded records a reload of bottle that compiled and was applied.
func (m *Metrics) ReloadSucceeded(bottle string) {
	m.touchReloads(bottle)
	m.reloads.WithLabelValues(bottle, resultSuccess).Inc()
	m.lastSuccess.WithLabelValues(bottle).Set(1)
	m.lastSuccessTime.WithLabelValues(bottle).SetToCurrentTime()
}

// ReloadFailed records a reload of bottle that was rejected; the previous
// policy keeps serving.
func (m *Metrics) ReloadFailed(bottle string) {
	m.touchReloads(bottle)
	m.reloads.WithLabelValues(bottle, resultFailure).Inc()
	m.lastSuccess.WithLabelValues(bottle).Set(0)
}

// Forget drops the reload series of a bottle that is no longer served, so
// a withdrawn bottle does not alert as failing forever.
func (m *Metrics) Forget(bottle string) {
	for _, v := range []interface {
		DeletePartialMatch(prometheus.Labels) int
	}{m.reloads, m.lastSuccess, m.lastSuccessTime} {
		v.DeletePartialMatch(prometheus.Labels{"bottle": bottle})
	}
}

// touchReloads creates both result series of bottle, so that the first
// failure is an increase from 0 that increase() can see, not a new series.
func (m *Metrics) touchReloads(bottle string) {
	m.reloads.WithLabelValues(bottle, resultSuccess)
	m.reloads.WithLabelValues(bottle, resultFailure)
}

// ExtProcDecision counts one ext_proc decision: ActionInject, ActionStrip
// or ActionDeny.
func (m *Metrics) ExtProcDecision(action string) {
	if c, ok := m.extprocByAction[action]; ok {
		c.Inc()
		return
	}
	m.extproc.WithLabelValues(action).Inc()
}

// RegisterBuildInfo exposes egressgate_build_info{version,revision,goversion}
// = 1, the usual Prometheus way of telling which build is running.
func RegisterBuildInfo(reg prometheus.Registerer, info buildinfo.Info) {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "egressgate_build_info",
		Help: "Always 1; the labels say which egressgate build is running.",
	}, []string{"version", "revision", "goversion"})
	g.WithLabelValues(info.Version, info.Revision, info.GoVersion).Set(1)
	reg.MustRegister(g)
}

// Request counts one agent request of the audit trail.
func (m *Metrics) Request(r audit.Record) {
	host := r.Host
	if strings.HasPrefix(r.Route, "refuse/") || r.Route == "" {
		// An arbitrary host the agent asked for: no label of its own,
		// or the agent could grow the metric without bound.
		host = "other"
	}
	m.requests.WithLabelValues(r.Bottle, host, r.Decision, r.Reason).Inc()
	for _, d := range r.DLP {
		// Every label comes from egressgate's own vocabulary (hosts the
		// bottle routes to, finding kinds, places), not from the agent.
		m.dlpDetections.WithLabelValues(r.Bottle, host, d.Kind, d.Where, d.Action).Inc()
	}
}

// AuditDropped exposes the audit sink's count of records it could not
// keep as egressgate_audit_records_dropped_total.
func (m *Metrics) AuditDropped(dropped func() uint64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "egressgate_audit_records_dropped_total",
		Help: "Audit records lost: the writer fell behind or the file could not be written. Agent traffic is never held up for the audit trail.",
	}, func() float64 { return float64(dropped()) }))
}

// XDSPushed, XDSAcked and XDSRejected count one xDS response to node.
func (m *Metrics) XDSPushed(node, typ string) { m.xdsEvents.WithLabelValues(node, typ, "pushed").Inc() }

// XDSAcked counts an ACK.
func (m *Metrics) XDSAcked(node, typ string) { m.xdsEvents.WithLabelValues(node, typ, "acked").Inc() }

// XDSRejected counts a NACK.
func (m *Metrics) XDSRejected(node, typ string) {
	m.xdsEvents.WithLabelValues(node, typ, "nacked").Inc()
}

// ExtProcDecided records how long one ext_proc decision took.
func (m *Metrics) ExtProcDecided(d time.Duration) { m.extprocLatency.Observe(d.Seconds()) }

// EnvoysConnected exposes egressgate_envoy_connected{bottle}: 1 while the
// bottle's Envoy holds an xDS stream, 0 otherwise. connected is read at
// scrape time.
func (m *Metrics) EnvoysConnected(connected func() map[string]bool) {
	desc := prometheus.NewDesc("egressgate_envoy_connected",
		"1 while the bottle's Envoy holds an xDS stream to egressgate, 0 otherwise.", []string{"bottle"}, nil)
	m.reg.MustRegister(collectorFunc{desc: desc, collect: func(ch chan<- prometheus.Metric) {
		for bottle, up := range connected() {
			v := 0.0
			if up {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, bottle)
		}
	}})
}

// collectorFunc is a one-metric collector computed at scrape time.
type collectorFunc struct {
	desc    *prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c collectorFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }
