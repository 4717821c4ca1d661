package extproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"

	"github.com/egressgate/egressgate/extprocapi"
	"github.com/egressgate/egressgate/internal/testenv"
)

// Test values. The tokens are distinctive so a grep of logs and bodies
// cannot miss them.
const (
	tokenA     = "tok-A-3f9c2e7d1b6a"
	tokenB     = "tok-B-8e1d4c0a9f27"
	agentToken = "agent-sent-fake-credential"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// harness is a Server behind a real gRPC server on an in-memory listener,
// with a client, a settable clock and captured debug logs.
type harness struct {
	srv    *Server
	conn   *grpc.ClientConn
	client extprocv3.ExternalProcessorClient
	logs   *testenv.Buffer
	clock  *clock
}

func newHarness(t *testing.T) *harness { return newHarnessWith(t, Options{}) }

// newHarnessWith is newHarness with the server's hooks in o; the harness
// sets the logger and the clock.
func newHarnessWith(t *testing.T, o Options) *harness {
	t.Helper()
	h := &harness{logs: &testenv.Buffer{}, clock: &clock{now: t0}}
	o.Logger = slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o.Now = h.clock.Now
	h.srv = New(o)

	lis := bufconn.Listen(1 << 20)
	g := grpc.NewServer()
	h.srv.Register(g)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)

	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	h.conn = conn
	h.client = extprocv3.NewExternalProcessorClient(conn)
	return h
}

// route is the stream metadata Envoy sends for a route; slot "" means a
// route with no credential.
func route(host, slot, scheme string) []string {
	md := []string{extprocapi.MetadataHost, host}
	if slot != "" {
		md = append(md, extprocapi.MetadataSlot, slot, extprocapi.MetadataScheme, scheme)
	}
	return md
}

// open starts one ext_proc stream carrying md as initial metadata.
func (h *harness) open(t *testing.T, md []string) extprocv3.ExternalProcessor_ProcessClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	stream, err := h.client.Process(metadata.AppendToOutgoingContext(ctx, md...))
	require.NoError(t, err)
	return stream
}

// send sends one message and returns the one answer.
func send(t *testing.T, stream extprocv3.ExternalProcessor_ProcessClient, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
	t.Helper()
	require.NoError(t, stream.Send(req))
	resp, err := stream.Recv()
	require.NoError(t, err)
	return resp
}

// headers runs one request the way Envoy does: one stream, one request
// headers message. The request carries agent credentials and a Host that
// names a credentialed host, neither of which may influence the answer.
func (h *harness) headers(t *testing.T, md []string) *extprocv3.ProcessingResponse {
	t.Helper()
	resp, err := h.roundTrip(md)
	require.NoError(t, err)
	return resp
}

// roundTrip is headers without a *testing.T, for worker goroutines (which
// must not call FailNow).
func (h *harness) roundTrip(md []string, headers ...string) (*extprocv3.ProcessingResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := h.client.Process(metadata.AppendToOutgoingContext(ctx, md...))
	if err != nil {
		return nil, err
	}
	if err := stream.Send(agentRequest(headers...)); err != nil {
		return nil, err
	}
	resp, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	if err := stream.CloseSend(); err != nil {
		return nil, err
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("stream did not end cleanly: %v", err)
	}
	return resp, nil
}

// agentRequest is a request's headers as Envoy sends them, plus extra
// key, value pairs.
func agentRequest(extra ...string) *extprocv3.ProcessingRequest {
	hv := func(k, v string) *corev3.HeaderValue { return &corev3.HeaderValue{Key: k, RawValue: []byte(v)} }
	headers := []*corev3.HeaderValue{
		hv(":authority", "chatgpt.com"),
		hv("host", "chatgpt.com"),
		hv("authorization", "Bearer "+agentToken),
		hv("proxy-authorization", "Basic "+agentToken),
	}
	for i := 0; i+1 < len(extra); i += 2 {
		headers = append(headers, hv(extra[i], extra[i+1]))
	}
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
		RequestHeaders: &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: headers}, EndOfStream: true},
	}}
}

// headersWith is headers for a request that also carries extra headers.
func (h *harness) headersWith(t *testing.T, md []string, extra ...string) *extprocv3.ProcessingResponse {
	t.Helper()
	resp, err := h.roundTrip(md, extra...)
	require.NoError(t, err)
	return resp
}

// clock is a settable time source shared with the server.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}
