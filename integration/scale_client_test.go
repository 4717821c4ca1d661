package integration

import (
	"bytes"
	"context"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"github.com/egressgate/egressgate/xdsauth"
)

// envoyTypes are what the simulated Envoy subscribes to, each as a
// wildcard: what a bottle's Envoy ends up holding (a real Envoy asks for
// routes and secrets by the names its listeners reference).
var envoyTypes = []string{resource.ListenerType, resource.ClusterType, resource.RouteType, resource.SecretType}

// adsClient is a light simulated xDS client: one SotW ADS stream that
// subscribes to its types, ACKs every response (so the server keeps
// streaming) and records when each response arrived and what it held.
type adsClient struct {
	node  *corev3.Node
	types []string

	mu        sync.Mutex
	responses int                        // every response received
	first     map[string]time.Time       // type URL -> first response
	last      map[string]receivedMessage // type URL -> latest response
	err       error                      // why the stream ended
}

type receivedMessage struct {
	at   time.Time
	wire []byte // the response's resources, for the bench to look into
}

func newADSClient(node *corev3.Node, types ...string) *adsClient {
	return &adsClient{node: node, types: types, first: map[string]time.Time{}, last: map[string]receivedMessage{}}
}

// dialControl opens one TLS connection to control's xDS; a client retries
// quickly while control is not yet listening, as Envoy's back-off does.
func dialControl(addr string, creds credentials.TransportCredentials) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr, grpc.WithTransportCredentials(creds),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 10 * time.Millisecond, Multiplier: 1.2, MaxDelay: 50 * time.Millisecond},
			MinConnectTimeout: 5 * time.Second,
		}))
}

// run streams until ctx ends. WaitForReady lets the stream be opened
// before control listens: it goes out once the connection is up.
func (c *adsClient) run(ctx context.Context, conn *grpc.ClientConn, token string) {
	ctx = metadata.AppendToOutgoingContext(ctx, xdsauth.MetadataKey, "Bearer "+token)
	s, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx, grpc.WaitForReady(true))
	if err == nil {
		err = c.stream(s)
	}
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
}

func (c *adsClient) stream(s discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient) error {
	for i, typ := range c.types {
		req := &discoveryv3.DiscoveryRequest{TypeUrl: typ}
		if i == 0 {
			req.Node = c.node // Envoy names its node on the first message only
		}
		if err := s.Send(req); err != nil {
			return err
		}
	}
	for {
		resp, err := s.Recv()
		if err != nil {
			return err
		}
		c.record(resp)
		ack := &discoveryv3.DiscoveryRequest{TypeUrl: resp.GetTypeUrl(), VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce()}
		if err := s.Send(ack); err != nil {
			return err
		}
	}
}

func (c *adsClient) record(resp *discoveryv3.DiscoveryResponse) {
	now := time.Now()
	var wire []byte
	for _, r := range resp.GetResources() {
		wire = append(wire, r.GetValue()...)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.responses++
	if _, ok := c.first[resp.GetTypeUrl()]; !ok {
		c.first[resp.GetTypeUrl()] = now
	}
	c.last[resp.GetTypeUrl()] = receivedMessage{at: now, wire: wire}
}

// served reports when the client had its first response of every type in
// types, and whether it has.
func (c *adsClient) served(types ...string) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var latest time.Time
	for _, typ := range types {
		at, ok := c.first[typ]
		if !ok {
			return time.Time{}, false
		}
		if at.After(latest) {
			latest = at
		}
	}
	return latest, true
}

// holds reports when the latest response of typ arrived, if it contains
// want.
func (c *adsClient) holds(typ string, want []byte) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.last[typ]
	if !ok || !bytes.Contains(m.wire, want) {
		return time.Time{}, false
	}
	return m.at, true
}

func (c *adsClient) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.responses
}

func (c *adsClient) ended() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}
