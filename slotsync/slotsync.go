// Package slotsync keeps the ext_proc slot table of a split deployment in
// step with `egressgate control`. The ext_proc sidecar subscribes over ADS
// to the SDS generic secrets of its node, as Envoy does for its own
// resources, so slot values travel the same push path as routes, and with
// them the server certificate and the DLP scanner's rules and canaries.
package slotsync

import (
	"context"
	"errors"
	"log/slog"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/grpc"

	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/slotwire"
)

// Options configures Run.
type Options struct {
	// Node names the ext_proc sidecar to the control plane: Id is the
	// bottle name and Cluster is xdsauth.ExtProcCluster. Sent on the first
	// request of every stream.
	Node *corev3.Node
	// Token gives what is sent as "authorization: Bearer <token>" metadata
	// on each stream it opens, asked afresh each time so that a rotated
	// token is picked up on the reconnect its revocation causes; nil or ""
	// sends none.
	Token func() string
	// Logger receives connection and NACK events; nil discards them. Slot
	// values are never logged.
	Logger *slog.Logger
	// OnSlots receives the full slot set of each accepted response, in slot
	// order. It runs before the response is ACKed, so an ACK tells the
	// control plane the slots are live. Its first call means the first slot
	// set has arrived (readiness). It may repeat an unchanged set after a
	// reconnect, and is never called because a stream dropped.
	OnSlots func([]config.Slot)
	// OnServerCert receives the certificate the sidecar's ext_proc server
	// presents to Envoy (slotwire.ExtProcServerCertSecret), whenever a response
	// carries one, before OnSlots. Nil ignores it.
	OnServerCert func(slotwire.Certificate)
	// OnDLP receives the inputs of the bottle's DLP scanner besides its
	// slots, the manifest's rules and the canaries planted in its agent's
	// environment, with every accepted response, before OnSlots: empty
	// ones when the response carries none. Nil ignores them.
	OnDLP func(slotwire.DLPInputs)
	// Backoff is the first reconnect delay (default 100ms); it doubles up
	// to 1s and starts over after a stream that delivered slots or lived
	// more than 10s. It also paces repeated NACKs, up to 5s.
	Backoff time.Duration
}

const (
	defaultBackoff = 100 * time.Millisecond
	// maxReconnect caps the wait before reopening a failed stream: slots
	// changed while the control plane was away should arrive within about
	// a second of its return, as Envoy's routes do (its bootstrap caps its
	// xDS back-off at 1s too).
	maxReconnect = time.Second
	// maxNACKPacing caps the wait before re-NACKing a version; it only
	// keeps a bad snapshot from bouncing at full speed, so may be longer.
	maxNACKPacing = 5 * time.Second
	// healthyStream is how long a stream must live for its end to count as
	// a fresh failure rather than one more in a row.
	healthyStream = 10 * time.Second
)

// Run subscribes to the node's slot secrets on conn until ctx ends, then
// returns nil. A stream error is logged and the stream reopened after a
// backoff; the slots last handed to OnSlots stay in force meanwhile, because
// a control plane restart must not take credentials away from a running
// bottle. Run returns an error only for invalid options.
func Run(ctx context.Context, conn grpc.ClientConnInterface, o Options) error {
	if err := o.validate(); err != nil {
		return err
	}
	o.setDefaults()
	c := newClient(conn, o)
	reconnect := backoff{initial: o.Backoff, max: maxReconnect}
	for {
		start := time.Now()
		err := c.stream(ctx)
		if ctx.Err() != nil {
			return nil
		}
		// A stream that delivered slots was healthy: its end (a control
		// plane restart, say) is a first failure, retried after the
		// shortest delay. Counting only its lifetime would let a few
		// restarts in quick succession push every later resync to the cap.
		if c.streamAccepted || time.Since(start) > healthyStream {
			reconnect.reset()
		}
		delay := reconnect.step()
		o.Logger.Warn("slot stream ended; reconnecting", "node", o.Node.GetId(), "err", err, "retry_in", delay)
		if !sleep(ctx, delay) {
			return nil
		}
	}
}

func (o *Options) validate() error {
	if o.Node.GetId() == "" {
		return errors.New("slotsync: node id is required")
	}
	if o.OnSlots == nil {
		return errors.New("slotsync: OnSlots is required")
	}
	return nil
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Backoff <= 0 {
		o.Backoff = defaultBackoff
	}
}

// backoff is a doubling delay capped at max.
type backoff struct {
	initial time.Duration
	max     time.Duration
	next    time.Duration
}

func (b *backoff) reset() { b.next = 0 }

// step returns the delay to wait now and doubles the next one.
func (b *backoff) step() time.Duration {
	d := b.next
	if d == 0 {
		d = b.initial
	}
	b.next = min(2*d, b.max)
	return min(d, b.max)
}

// sleep waits for d or until ctx ends, reporting whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
