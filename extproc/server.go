// Package extproc is the Envoy external processing (ext_proc) server. For
// every request on the MITM path it strips the credentials the agent sent
// and injects the host-held credential bound to the route Envoy matched, or
// refuses the request when that credential is unusable.
//
// Envoy is configured to send request headers only and to fail closed
// (failure_mode_allow: false), so any error here refuses the request.
package extproc

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/egressgate/egressgate/codexauth"
)

// Server answers Envoy's ext_proc streams, one stream per HTTP request.
type Server struct {
	logger *slog.Logger
	now    func() time.Time
	slots  atomic.Pointer[slotTable]
	// setSlots serialises SetSlots, which reads the old table to carry
	// over when each value was first seen.
	setSlots sync.Mutex
	// rejected holds the credential values upstreams refused.
	rejected atomic.Pointer[rejections]
	// observe counts decisions (inject, strip, deny, answer) for metrics;
	// onRejected is told of each new rejection (Options).
	observe    func(action string)
	latency    func(time.Duration)
	onRejected func(Rejection)
	// minter signs the placeholder tokens of refresh answers with a key
	// that lives and dies with this process.
	minter *codexauth.Minter
	// refreshes bounds the refresh answers given to the bottle's agents.
	refreshes *rate.Limiter
	bindings  bindingCache
	// dlpIn is what the scanner is built from (guarded by setSlots);
	// detector is the scanner built from it and the slot values.
	dlpIn       dlpInputs
	detector    atomic.Pointer[detector]
	onDetection func(Detection)
}

var _ extprocv3.ExternalProcessorServer = (*Server)(nil)

// Options are what a Server is built with; every field may be left out.
type Options struct {
	// Logger gets the server's logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Observe is told of every decision by its action ("inject",
	// "strip", "deny" or "answer"); Latency of how long each took.
	Observe func(action string)
	Latency func(time.Duration)
	// OnRejected is told of every new rejection of a host credential by
	// its upstream.
	OnRejected func(Rejection)
	// Minter signs the placeholder tokens of refresh answers. Nil makes
	// one whose key lives and dies with this process.
	Minter *codexauth.Minter
	// OnDetection is told of every secret found in a request on a route
	// with DLP on (see Detection).
	OnDetection func(Detection)
}

// New returns a Server with an empty slot table: until SetSlots is called,
// routes that need a credential are refused.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Observe == nil {
		o.Observe = func(string) {}
	}
	if o.Latency == nil {
		o.Latency = func(time.Duration) {}
	}
	if o.OnRejected == nil {
		o.OnRejected = func(Rejection) {}
	}
	if o.OnDetection == nil {
		o.OnDetection = func(Detection) {}
	}
	if o.Minter == nil {
		m, err := codexauth.NewMinter()
		if err != nil {
			// Only key generation can fail here; without a minter refresh
			// answers fail closed and everything else works.
			o.Logger.Error("cannot make a placeholder signing key; codex token refreshes will be refused", "error", err)
		}
		o.Minter = m
	}
	s := &Server{
		logger: o.Logger, now: o.Now, minter: o.Minter,
		observe: o.Observe, latency: o.Latency, onRejected: o.OnRejected, onDetection: o.OnDetection,
		refreshes: rate.NewLimiter(refreshRate, refreshBurst),
	}
	// The well-known formats are found before any slot or rule arrives.
	s.rebuildScanner()
	return s
}

// Register registers the ExternalProcessor service on g, and the access
// log service through which Envoy reports upstreams refusing a credential.
func (s *Server) Register(g *grpc.Server) {
	extprocv3.RegisterExternalProcessorServer(g, s)
	accesslogv3.RegisterAccessLogServiceServer(g, s)
}

// Process serves one ext_proc stream. The binding is read once from the
// stream's initial metadata; it is fixed for the stream's one request.
func (s *Server) Process(stream extprocv3.ExternalProcessor_ProcessServer) error {
	ctx := stream.Context()
	b, bindErr := s.bindings.get(ctx)
	st := &requestState{dlp: newDLPState(b)}
	for {
		req, err := stream.Recv()
		if err != nil {
			return endOfStream(ctx, err)
		}
		resp, err := s.respond(ctx, b, bindErr, st, req)
		if err != nil {
			return err
		}
		if err := stream.Send(resp); err != nil {
			return endOfStream(ctx, err)
		}
	}
}

// requestState is what one stream keeps between its request's messages.
type requestState struct {
	req request
	dlp dlpState
}

const headerWebSocketExtensions = "sec-websocket-extensions"

// endOfStream turns a Recv/Send error into Process's result: Envoy closing
// the stream (EOF) or giving up on it (cancel) is a normal end.
func endOfStream(ctx context.Context, err error) error {
	if errors.Is(err, io.EOF) || ctx.Err() != nil || status.Code(err) == codes.Canceled {
		return nil
	}
	return status.Convert(err).Err()
}

// respond answers one message. Phases other than request headers are not
// configured to arrive; if one does, it gets an empty "continue" so Envoy
// never waits on us. A message with no phase at all is a protocol error,
// which Envoy (failing closed) turns into a refused request.
func (s *Server) respond(ctx context.Context, b binding, bindErr error, st *requestState, req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error) {
	switch r := req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		start := time.Now()
		var resp *extprocv3.ProcessingResponse
		if st.dlp.on && bindErr == nil {
			// Kept for a refusal of the body, shaped for the client.
			st.req = requestOf(r.RequestHeaders)
			resp = s.dlpHeaders(ctx, &st.dlp, b, st.req, r.RequestHeaders)
			if st.dlp.upgrade {
				// The server must not agree to compress frames it
				// would then not be able to read.
				b.strip = append(slices.Clone(b.strip), headerWebSocketExtensions)
			}
		}
		if resp == nil {
			resp = withMetadata(s.requestHeaders(ctx, b, bindErr, r.RequestHeaders), &st.dlp)
		}
		s.latency(time.Since(start))
		return resp, nil
	case *extprocv3.ProcessingRequest_RequestBody:
		if st.dlp.on {
			return s.dlpBody(ctx, &st.dlp, b, st.req, r.RequestBody), nil
		}
	case *extprocv3.ProcessingRequest_RequestTrailers:
		if st.dlp.on {
			if resp := s.dlpTrailers(ctx, &st.dlp, b, st.req, r.RequestTrailers); resp != nil {
				return resp, nil
			}
		}
		return withMetadata(s.requestTrailers(ctx, b, r.RequestTrailers), &st.dlp), nil
	}
	if resp := continueOther(req); resp != nil {
		return resp, nil
	}
	return nil, status.Error(codes.InvalidArgument, "ext_proc: processing request names no phase")
}
