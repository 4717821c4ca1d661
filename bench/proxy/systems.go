package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/egressgate/egressgate/internal/procstat"
)

// system is one of the things compared. launch starts it and returns at
// once: the cold start is timed from before launch to the first request
// it proxies with a 200.
type system interface {
	name() string
	launch(env *benchEnv, round int) (*instance, error)
}

// part is a process whose CPU and memory count towards a system.
type part struct {
	name string
	pid  int
}

// instance is a launched system.
type instance struct {
	procs []*process // stopped when the round is over
	proxy *url.URL   // the agent's HTTPS_PROXY; nil for direct
	// roots is what the agent trusts; a proxy may write its CA only once
	// it is starting, so this is asked again until it answers.
	roots func() (*x509.CertPool, error)
	// parts lists the processes to measure, once the system serves.
	parts func() ([]part, error)
	dial  func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (in *instance) stop() error { return stopAll(in.procs) }

// exited reports a process of the instance that has died.
func (in *instance) exited() error {
	for _, p := range in.procs {
		if err := p.exitedErr(); err != nil {
			return err
		}
	}
	return nil
}

// target is how agents reach the upstream through the instance: through
// the proxy with the agent's own fake credentials, or (direct) straight
// to the upstream holding the host token itself, as an agent with the
// real credential would.
func (in *instance) target(env *benchEnv, roots *x509.CertPool) target {
	h := http.Header{}
	if in.proxy == nil {
		h.Set("Authorization", "Bearer "+env.hostToken)
	} else {
		h.Set("Authorization", "Bearer "+agentFake)
		h.Set("X-Api-Key", agentFake)
	}
	return target{proxy: in.proxy, roots: roots, dial: in.dial, header: h}
}

// pollInterval is how often a cold start is probed: a poll interval, not
// synchronisation (each probe is a fresh connection with its own timeout).
const pollInterval = 10 * time.Millisecond

// firstOK probes the instance until a request comes back 200 and returns
// the agents' trust, or fails at the deadline or if a process exits.
func firstOK(ctx context.Context, env *benchEnv, in *instance, within time.Duration) (*x509.CertPool, error) {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	probe := modeSpec{name: "probe", clients: 1}
	var last error
	for {
		if err := in.exited(); err != nil {
			return nil, err
		}
		roots, err := in.roots()
		if err == nil {
			t := in.target(env, roots)
			attempt, cancelAttempt := context.WithTimeout(ctx, 2*time.Second)
			c := t.client(probe)
			err = t.get(attempt, c, false)
			c.CloseIdleConnections()
			cancelAttempt()
			if err == nil {
				return roots, nil
			}
		}
		last = err
		if werr := wait(ctx, pollInterval); werr != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, fmt.Errorf("no proxied 200 within %s; last attempt: %v", within, last)
			}
			return nil, werr
		}
	}
}

func partsCPU(parts []part) ([]time.Duration, error) {
	out := make([]time.Duration, len(parts))
	for i, p := range parts {
		t, err := procstat.CPUTime(p.pid)
		if err != nil {
			return nil, fmt.Errorf("CPU of %s: %w", p.name, err)
		}
		out[i] = t
	}
	return out, nil
}

func partsRSS(parts []part) ([]int64, error) {
	out := make([]int64, len(parts))
	for i, p := range parts {
		m, err := procstat.ReadMemory(p.pid)
		if err != nil {
			return nil, fmt.Errorf("RSS of %s: %w", p.name, err)
		}
		out[i] = m.RSS
	}
	return out, nil
}

// direct is the baseline: agents talk TLS to the upstream themselves.
type direct struct{}

func (direct) name() string { return sysDirect }

func (direct) launch(env *benchEnv, _ int) (*instance, error) {
	var d net.Dialer
	return &instance{
		roots: func() (*x509.CertPool, error) { return env.upstreamCA.pool(), nil },
		parts: func() ([]part, error) { return nil, nil },
		// benchHost does not resolve; a direct agent dials the upstream.
		dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, env.up.addr)
		},
	}, nil
}

// freePort is a loopback address nothing listens on at the moment. A
// proxy given it may find it taken by then; its start then fails with a
// clear error and the run stops.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
