package audit

import (
	accesslogdatav3 "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/egressgate/egressgate/internal/alsstream"
	"github.com/egressgate/egressgate/xdsauth"
)

// LogName names the audit log Envoy streams to the control plane.
const LogName = "egressgate-audit"

// Receiver is the access log service a bottle's Envoy streams its audit
// log to, on the control plane's xDS server. Streams are authenticated
// per bottle (xdsauth.AuditKey); a record's bottle is the authenticated
// one, whatever the entries say.
type Receiver struct {
	handle func(Record)
}

var _ accesslogv3.AccessLogServiceServer = (*Receiver)(nil)

// NewReceiver hands every record to handle, which must not block.
func NewReceiver(handle func(Record)) *Receiver { return &Receiver{handle: handle} }

// Register adds the access log service to g, whose stream interceptor
// must authenticate it (xdsauth.Authority.StreamInterceptor).
func (rc *Receiver) Register(g *grpc.Server) { accesslogv3.RegisterAccessLogServiceServer(g, rc) }

// StreamAccessLogs turns each entry of the stream into a record.
func (rc *Receiver) StreamAccessLogs(stream accesslogv3.AccessLogService_StreamAccessLogsServer) error {
	bottle, ok := xdsauth.NodeFromContext(stream.Context())
	if !ok {
		return status.Error(codes.Unauthenticated, "audit log: unauthenticated stream")
	}
	return alsstream.Read(stream,
		func(id *accesslogv3.StreamAccessLogsMessage_Identifier) error {
			if n := id.GetNode().GetId(); n != "" && n != bottle {
				return status.Error(codes.PermissionDenied, "audit log: the stream's node is not the bottle its key is for")
			}
			return nil
		},
		func(logName string, e *accesslogdatav3.HTTPAccessLogEntry) {
			if logName != LogName {
				return
			}
			if r, ok := FromEntry(e); ok {
				r.Bottle = bottle
				rc.handle(r)
			}
		})
}
