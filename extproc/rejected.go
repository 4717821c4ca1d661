package extproc

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	accesslogdatav3 "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"

	"github.com/egressgate/egressgate/extprocapi"
	"github.com/egressgate/egressgate/internal/alsstream"
)

// rejectionHold is how long a credential value the upstream refused stays
// refused when the host's credential does not change. After it, requests
// go through again and the next refusal marks it anew: an upstream that
// refused by mistake costs the bottle minutes, a revoked login one
// upstream request per hold, never a loop.
const rejectionHold = 10 * time.Minute

// Rejection is an upstream's refusal (401) of the credential a slot holds.
type Rejection struct {
	Slot   string
	Host   string
	Status int
	At     time.Time
	print  fingerprint
}

// rejections is the current set, by slot; copied on write, since every
// credentialed request reads it and a write happens once per refusal.
type rejections map[string]Rejection

// StreamAccessLogs receives the credential log. It is how ext_proc learns
// what an upstream answered: asking Envoy to send every response's
// headers to ext_proc would double the per-request cost.
func (s *Server) StreamAccessLogs(stream accesslogv3.AccessLogService_StreamAccessLogsServer) error {
	return alsstream.Read(stream,
		func(*accesslogv3.StreamAccessLogsMessage_Identifier) error { return nil },
		func(logName string, e *accesslogdatav3.HTTPAccessLogEntry) {
			if logName == extprocapi.CredentialLogName {
				s.upstreamAnswered(stream.Context(), e)
			}
		})
}

// upstreamAnswered marks the slot rejected when its upstream refused the
// value the slot held when the request started. A refusal of an older
// value (the host login changed meanwhile) says nothing about the new one.
func (s *Server) upstreamAnswered(ctx context.Context, e *accesslogdatav3.HTTPAccessLogEntry) {
	common := e.GetCommonProperties()
	tags := common.GetCustomTags()
	name, host := tags[extprocapi.TagSlot], tags[extprocapi.TagHost]
	code := int(e.GetResponse().GetResponseCode().GetValue())
	// Only the upstream's own answer counts; Envoy and ext_proc answer
	// locally with other details.
	if name == "" || code != http.StatusUnauthorized || e.GetResponse().GetResponseCodeDetails() != "via_upstream" {
		return
	}
	entry, ok := s.lookup(name)
	if !ok || !entry.slot.Present() || tags[extprocapi.TagSource] != entry.slot.Source.String() {
		return
	}
	if start := common.GetStartTime(); start == nil || start.AsTime().Before(entry.since) {
		return
	}
	r := Rejection{Slot: name, Host: host, Status: code, At: s.now(), print: entry.print}
	for {
		old := s.rejected.Load()
		next := rejections{}
		if old != nil {
			for k, v := range *old {
				next[k] = v
			}
		}
		if prev, ok := next[name]; ok && prev.print == r.print && r.At.Sub(prev.At) < rejectionHold {
			return // already known; the first refusal was logged
		}
		next[name] = r
		if s.rejected.CompareAndSwap(old, &next) {
			break
		}
	}
	s.logger.LogAttrs(ctx, slog.LevelWarn, "upstream rejected the host credential; its routes are refused until the host credential changes",
		slog.String("host", host), slog.String("slot", name), slog.String("source", entry.slot.Source.String()),
		slog.Int("status", code), slog.String("fix", entry.slot.Source.Fix()))
	s.onRejected(r)
}

// rejection returns the refusal that holds for e now, if any.
func (s *Server) rejection(e slotEntry, now time.Time) (Rejection, bool) {
	t := s.rejected.Load()
	if t == nil {
		return Rejection{}, false
	}
	r, ok := (*t)[e.slot.Name]
	if !ok || r.print != e.print || now.Sub(r.At) >= rejectionHold {
		return Rejection{}, false
	}
	return r, true
}

// Rejections lists the refusals that hold now, by slot, for status.
func (s *Server) Rejections() map[string]Rejection {
	out := map[string]Rejection{}
	now := s.now()
	for name := range s.rejectedSnapshot() {
		if e, ok := s.lookup(name); ok {
			if r, ok := s.rejection(e, now); ok {
				out[name] = r
			}
		}
	}
	return out
}

func (s *Server) rejectedSnapshot() rejections {
	t := s.rejected.Load()
	if t == nil {
		return nil
	}
	return *t
}

var _ accesslogv3.AccessLogServiceServer = (*Server)(nil)
