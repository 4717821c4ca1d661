package slotsync

import (
	"context"
	"errors"
	"fmt"
	"io"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
)

// client is the state kept across streams: the last accepted version, sent
// on reconnect as Envoy does, and the pacing of repeated NACKs.
type client struct {
	ads  discoveryv3.AggregatedDiscoveryServiceClient
	opts Options

	acked    string // version of the last accepted response
	rejected string // version of the last NACKed response
	nack     backoff
	// streamAccepted says the current (or last) stream delivered a
	// response that was accepted.
	streamAccepted bool
}

func newClient(conn grpc.ClientConnInterface, o Options) *client {
	return &client{ads: discoveryv3.NewAggregatedDiscoveryServiceClient(conn), opts: o, nack: backoff{initial: o.Backoff, max: maxNACKPacing}}
}

// stream runs one ADS stream until it fails or ctx ends.
func (c *client) stream(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.streamAccepted = false
	if c.opts.Token != nil {
		if token := c.opts.Token(); token != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
		}
	}
	// WaitForReady: while the control plane is away the connection is in
	// TRANSIENT_FAILURE, where a plain call fails at once and the stream
	// would only be retried after our own back-off. Waiting instead opens
	// the stream the moment gRPC's reconnect (capped at 1s by the caller's
	// connect params) succeeds.
	s, err := c.ads.StreamAggregatedResources(ctx, grpc.WaitForReady(true))
	if err != nil {
		return fmt.Errorf("open stream: %w", err)
	}
	first := c.request("", nil)
	first.Node = c.opts.Node // only the first request of a stream names the node
	if err := send(s, first); err != nil {
		return err
	}
	c.opts.Logger.Info("slot stream open", "node", c.opts.Node.GetId(), "version", c.acked)
	for {
		resp, err := s.Recv()
		if err != nil {
			return err
		}
		req := c.handle(ctx, resp)
		if req == nil {
			continue
		}
		if err := send(s, req); err != nil {
			return err
		}
	}
}

// send sends req. A failed Send reports only io.EOF; the stream's real
// status comes from Recv.
func send(s discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient, req *discoveryv3.DiscoveryRequest) error {
	err := s.Send(req)
	if errors.Is(err, io.EOF) {
		_, err = s.Recv()
	}
	return err
}

// handle applies one response and returns the ACK or NACK to send, or nil
// for a response that is not ours to answer.
func (c *client) handle(ctx context.Context, resp *discoveryv3.DiscoveryResponse) *discoveryv3.DiscoveryRequest {
	log := c.opts.Logger.With("node", c.opts.Node.GetId(), "version", resp.GetVersionInfo())
	if resp.GetTypeUrl() != resource.SecretType {
		// Only secrets are subscribed to; an ADS server has no watch open
		// for another type, so there is nothing to ACK.
		log.Warn("ignoring response of unsubscribed type", "type", resp.GetTypeUrl())
		return nil
	}
	u, err := decodeSlots(resp)
	if err != nil {
		log.Error("rejecting slot secrets; keeping the previous slots", "err", err)
		c.paceNACK(ctx, resp.GetVersionInfo())
		return c.request(resp.GetNonce(), err)
	}
	// The certificate first: the ext_proc server must be able to answer
	// Envoy by the time the slots say it may. The DLP inputs before the
	// slots, so that the ACK covers them too.
	if u.cert != nil && c.opts.OnServerCert != nil {
		c.opts.OnServerCert(*u.cert)
	}
	if c.opts.OnDLP != nil {
		c.opts.OnDLP(u.dlp)
	}
	c.opts.OnSlots(u.slots)
	c.acked, c.rejected = resp.GetVersionInfo(), ""
	c.streamAccepted = true
	c.nack.reset()
	log.Info("slots updated", "slots", slotNames(u.slots), "dlp_patterns", len(u.dlp.Rules.Patterns), "canaries", len(u.dlp.Canaries))
	return c.request(resp.GetNonce(), nil)
}

// paceNACK delays a NACK of a version already NACKed. A NACK carries the
// last accepted version, and go-control-plane's snapshot cache answers any
// other version by resending its snapshot at once, so a bad snapshot would
// otherwise bounce between the two ends at full speed until it is replaced.
// The first NACK of a version goes out at once.
func (c *client) paceNACK(ctx context.Context, version string) {
	if version != c.rejected {
		c.rejected = version
		c.nack.reset()
		return
	}
	sleep(ctx, c.nack.step())
}

// request builds an ACK (nack == nil) or NACK of the response with nonce.
// Per the xDS protocol, version_info is the last accepted version either
// way; a NACK is told apart by its error_detail.
//
// resource_names stays empty on every request, the legacy wildcard, rather
// than the explicit "*": go-control-plane's snapshot cache (v0.14) matches
// requested names literally, so with ads=true it never answers ["*"] (no
// secret is named "*"), while an empty list gets every secret of the node.
// In SotW each request restates the whole subscription, so it must be the
// same on every request, ACKs and NACKs included.
func (c *client) request(nonce string, nack error) *discoveryv3.DiscoveryRequest {
	req := &discoveryv3.DiscoveryRequest{
		TypeUrl:       resource.SecretType,
		VersionInfo:   c.acked,
		ResponseNonce: nonce,
	}
	if nack != nil {
		req.ErrorDetail = &statuspb.Status{Code: int32(codes.InvalidArgument), Message: nack.Error()}
	}
	return req
}
