package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

const (
	modeKeepalive = "keepalive"
	modeH2        = "h2"
	modeTunnel    = "tunnel"
	modeSingle    = "single"
)

// requestTimeout bounds one request, so a stuck proxy ends a measurement
// with errors instead of hanging it.
const requestTimeout = 10 * time.Second

// benchURL is what every client asks for.
const benchURL = "https://" + benchHost + "/v1/bench"

// modeSpec is how a mode's clients talk: how many, over which protocol,
// and whether a connection (and its CONNECT tunnel) is reused.
type modeSpec struct {
	name      string
	clients   int
	h2        bool
	keepAlive bool
}

func specFor(mode string, clients int) modeSpec {
	switch mode {
	case modeH2:
		return modeSpec{name: mode, clients: clients, h2: true, keepAlive: true}
	case modeTunnel:
		// A new CONNECT tunnel and TLS handshake (with the proxy's
		// MITM certificate) for every request: what an agent that opens
		// a connection per call costs.
		return modeSpec{name: mode, clients: clients}
	case modeSingle:
		// One client alone: the latency a proxy adds, with no queueing.
		return modeSpec{name: mode, clients: 1, keepAlive: true}
	default:
		return modeSpec{name: modeKeepalive, clients: clients, keepAlive: true}
	}
}

func (s modeSpec) describe() string {
	switch s.name {
	case modeH2:
		return fmt.Sprintf("%d clients, HTTP/2, one connection each", s.clients)
	case modeTunnel:
		return fmt.Sprintf("%d clients, a new CONNECT tunnel + TLS per request", s.clients)
	case modeSingle:
		return "1 client, HTTP/1.1 keep-alive: added latency"
	}
	return fmt.Sprintf("%d clients, HTTP/1.1 keep-alive", s.clients)
}

// target is how a client reaches the upstream through one system.
type target struct {
	proxy  *url.URL // nil: straight to the upstream
	roots  *x509.CertPool
	dial   func(ctx context.Context, network, addr string) (net.Conn, error) // nil: the default dialer
	header http.Header                                                       // sent with every request
}

// client is one agent: its own transport, so its own connection(s).
func (t target) client(s modeSpec) *http.Client {
	tr := &http.Transport{
		DialContext:         t.dial,
		TLSClientConfig:     &tls.Config{RootCAs: t.roots},
		ForceAttemptHTTP2:   s.h2,
		DisableKeepAlives:   !s.keepAlive,
		MaxIdleConnsPerHost: 1,
		TLSHandshakeTimeout: requestTimeout,
	}
	if t.proxy != nil {
		tr.Proxy = http.ProxyURL(t.proxy)
	}
	if !s.h2 {
		// A non-nil empty map is how net/http is told not to speak h2.
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, Timeout: requestTimeout}
}

// get sends one request and reads the answer to the end (so a kept-alive
// connection is reused); any answer but the upstream's 200 is an error.
func (t target) get(ctx context.Context, c *http.Client, wantH2 bool) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, benchURL, nil)
	if err != nil {
		return err
	}
	req.Header = t.header.Clone()
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	switch {
	case err != nil:
		return err
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("status %s", resp.Status)
	case n != int64(len(body)):
		return fmt.Errorf("body of %d bytes, want %d", n, len(body))
	case wantH2 && resp.ProtoMajor != 2:
		return fmt.Errorf("answered over %s, want HTTP/2", resp.Proto)
	}
	return nil
}

// sample is one finished request.
type sample struct {
	end     time.Time
	latency time.Duration
	ok      bool
}

// loadResult is one measurement: the requests that finished inside the
// measured window.
type loadResult struct {
	requests  int
	errors    int
	firstErr  string
	window    time.Duration
	latencies []time.Duration // of the successful requests, sorted
	wrong     int64           // requests the upstream found with wrong headers (warm-up included)
	cpu       []time.Duration // per part, over the window
}

// rate is successful requests a second.
func (r loadResult) rate() float64 { return float64(len(r.latencies)) / r.window.Seconds() }

// runLoad runs spec's clients against t for warmup, then measures for
// dur: requests finished, their latency, and the CPU the parts used.
func runLoad(ctx context.Context, t target, spec modeSpec, warmup, dur time.Duration, parts []part, up *upstream) (loadResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stop atomic.Bool
	var wg sync.WaitGroup
	perClient := make([][]sample, spec.clients)
	errs := make([]string, spec.clients)
	wrong0 := up.wrong.Load()
	for i := range spec.clients {
		c := t.client(spec)
		wg.Go(func() {
			defer c.CloseIdleConnections()
			for !stop.Load() && ctx.Err() == nil {
				start := time.Now()
				err := t.get(ctx, c, spec.h2)
				end := time.Now()
				perClient[i] = append(perClient[i], sample{end: end, latency: end.Sub(start), ok: err == nil})
				if err != nil && errs[i] == "" && !stop.Load() {
					errs[i] = err.Error()
				}
			}
		})
	}
	finish := func() { stop.Store(true); wg.Wait() }

	if err := wait(ctx, warmup); err != nil {
		finish()
		return loadResult{}, err
	}
	cpu0, err := partsCPU(parts)
	if err != nil {
		finish()
		return loadResult{}, err
	}
	t0 := time.Now()
	if err := wait(ctx, dur); err != nil {
		finish()
		return loadResult{}, err
	}
	cpu1, err := partsCPU(parts)
	t1 := time.Now()
	finish()
	if err != nil {
		return loadResult{}, err
	}
	r := loadResult{window: t1.Sub(t0), wrong: up.wrong.Load() - wrong0}
	for i := range cpu1 {
		r.cpu = append(r.cpu, cpu1[i]-cpu0[i])
	}
	for i, samples := range perClient {
		for _, s := range samples {
			if s.end.Before(t0) || s.end.After(t1) {
				continue
			}
			r.requests++
			if !s.ok {
				r.errors++
				continue
			}
			r.latencies = append(r.latencies, s.latency)
		}
		if r.firstErr == "" {
			r.firstErr = errs[i]
		}
	}
	slices.Sort(r.latencies)
	return r, nil
}

// wait lets a measurement run for d: a timed phase, not synchronisation.
func wait(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// percentile of sorted durations (nearest rank); 0 when empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
